"""Range requests for the ``bytes`` unit (RFC 9110 section 14) and ``If-Range`` (section 13.1.5).

:func:`evaluate_range` turns a request's ``Range`` and ``If-Range`` into a
:class:`RangeDecision`: 200 (send the whole representation), 206 (send the
ranges) or 416 (nothing satisfiable). For a 206 with several ranges,
:func:`byteranges` lays out the ``multipart/byteranges`` body: its exact
``Content-Length`` up front, then a generator of byte pieces that reads the
representation through a callback, so nothing is buffered.

Choices the RFC leaves open:

* A syntactically invalid ``Range``, an unknown unit, or a method other than
  GET: ignored, 200 (sections 14.2 and 14.1.1).
* Ranges are clamped to the representation, and overlapping or adjacent ones
  are coalesced (section 15.3.7.2 allows it "regardless of the order" they
  came in); parts go out in the order their range-specs appeared, as section
  15.3.7.2 says a server SHOULD, a coalesced part where its earliest member was.
* Abusive sets -- more than ``RangeLimits.max_ranges`` ranges, or more than
  ``max_overlapping`` ranges that overlap another (section 14.2's "more than two
  overlapping ranges") -- are *ignored* with a 200. Section 15.5.17 would allow
  a 416 ("an excessive request of small or overlapping ranges"); we choose the
  200 because a full response costs the server no more than a plain GET and
  section 17.15 lists "ignore" first among the defences.
* An empty representation has no byte to send: ``bytes=-N`` gets the empty
  200, other ranges 416.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from tether.conditional import ETag, parse_etag
from tether.errors import LocalProtocolError
from tether.httpdate import parse_http_date

__all__ = [
    "ByteRange",
    "Byteranges",
    "RangeDecision",
    "RangeLimits",
    "RangeReadError",
    "RangeSpec",
    "byteranges",
    "evaluate_range",
    "if_range_matches",
    "parse_range",
]

#: More digits than this in a position makes the Range invalid (ignored): 10**18 bytes is plenty.
_MAX_DIGITS = 18
# OWS, a range-spec or nothing, OWS, then "," or the end; the second OWS follows a spec only,
# so a run of spaces is read one way (else a failing match tries every split: quadratic).
_RANGE_SPEC_RE = re.compile(
    rb"[ \t]*(?:(?:([0-9]{1,18})-([0-9]{0,18})|-([0-9]{1,18}))[ \t]*)?(?:,|\Z)"
)
_UNIT_RE = re.compile(rb"[ \t]*([!#$%&'*+.^_`|~0-9A-Za-z-]+)=")


@dataclass(frozen=True, slots=True)
class RangeLimits:
    """What a Range may ask for before it is ignored (answered with 200)."""

    #: Most byte-range-specs in one Range field.
    max_ranges: int = 16
    #: Most ranges that overlap another range (RFC 9110 section 14.2: "more than two").
    max_overlapping: int = 2


@dataclass(frozen=True, slots=True)
class RangeSpec:
    """One byte-range-spec as sent: ``first-last``, ``first-`` (last None) or ``-suffix``."""

    first: int | None
    last: int | None
    suffix: int | None = None


@dataclass(frozen=True, slots=True)
class ByteRange:
    """A satisfiable range of the representation: bytes ``start`` to ``stop - 1``."""

    start: int
    stop: int

    @property
    def length(self) -> int:
        """Number of bytes in the range."""
        return self.stop - self.start

    def content_range(self, complete_length: int) -> bytes:
        """The ``Content-Range`` value, e.g. ``bytes 0-499/1234``."""
        return b"bytes %d-%d/%d" % (self.start, self.stop - 1, complete_length)


@dataclass(frozen=True, slots=True)
class RangeDecision:
    """What to answer: ``status`` 200, 206 or 416, with the ranges for a 206.

    ``headers`` are the fields a 206 or 416 needs besides the usual ones:
    ``Content-Range`` for one range or for 416 (``bytes */<length>``). For several
    ranges, lay out the body with :func:`byteranges`, which gives Content-Type and
    Content-Length.
    """

    status: int
    ranges: tuple[ByteRange, ...] = ()
    headers: tuple[tuple[bytes, bytes], ...] = ()


class RangeReadError(LocalProtocolError):
    """The read callback returned a different number of bytes than asked for."""


def parse_range(value: bytes) -> tuple[RangeSpec, ...] | None:
    """Parse a ``Range`` value for the ``bytes`` unit; ``None`` if invalid or another unit.

    ``bytes=0-499, 1000-, -200``. The unit is case-insensitive; empty list
    elements are allowed; a ``last`` below ``first`` makes the whole field invalid
    (RFC 9110 section 14.1.1).
    """
    unit = _UNIT_RE.match(value)
    if unit is None or unit.group(1).lower() != b"bytes":
        return None
    specs: list[RangeSpec] = []
    pos = unit.end()
    end = len(value)
    if pos == end:
        return None
    while pos < end:
        match = _RANGE_SPEC_RE.match(value, pos)
        if match is None or match.end() == pos:
            return None
        pos = match.end()
        first, last, suffix = match.group(1, 2, 3)
        if first is not None:
            first_pos = int(first)
            last_pos = int(last) if last else None
            if last_pos is not None and last_pos < first_pos:
                return None
            specs.append(RangeSpec(first_pos, last_pos))
        elif suffix is not None:
            specs.append(RangeSpec(None, None, int(suffix)))
    return tuple(specs) if specs else None


def if_range_matches(
    value: bytes, *, etag: ETag | None, last_modified: float | None, now: float | None = None
) -> bool:
    """RFC 9110 section 13.1.5: does ``If-Range`` allow the Range to be honoured?

    An entity-tag matches only strongly (a weak tag never matches). An
    HTTP-date matches only if it equals ``last_modified`` exactly and that date is
    a strong validator: with ``now`` (the response Date), at least one second
    before it (section 8.8.2.2). Anything malformed does not match.
    """
    stripped = value.strip(b" \t")
    if stripped[:1] == b'"' or stripped[:2] == b"W/":
        tag = parse_etag(stripped)
        return tag is not None and etag is not None and etag.strong_match(tag)
    date = parse_http_date(stripped, now=now)
    if date is None or last_modified is None or math.floor(last_modified) != date:
        return False
    return now is None or last_modified <= now - 1


def _satisfiable(specs: Sequence[RangeSpec], length: int) -> list[ByteRange]:
    ranges: list[ByteRange] = []
    for spec in specs:
        if spec.suffix is not None:
            if spec.suffix > 0 and length > 0:
                ranges.append(ByteRange(max(0, length - spec.suffix), length))
        else:
            assert spec.first is not None
            if spec.first < length:
                stop = length if spec.last is None else min(spec.last + 1, length)
                ranges.append(ByteRange(spec.first, stop))
    return ranges


def _overlapping(ranges: list[ByteRange]) -> int:
    """How many ranges overlap at least one other range."""
    ordered = sorted(ranges, key=lambda r: (r.start, r.stop))
    overlapping = set()
    reach, reach_index = -1, -1
    for index, current in enumerate(ordered):
        if current.start < reach:
            overlapping.add(index)
            overlapping.add(reach_index)
        if current.stop > reach:
            reach, reach_index = current.stop, index
    return len(overlapping)


def _coalesce(ranges: list[ByteRange]) -> tuple[ByteRange, ...]:
    """Merge overlapping or adjacent ranges; keep the request's order (RFC 9110 15.3.7.2).

    A merged range takes the place of its earliest member in the request.
    """
    groups: list[tuple[int, ByteRange]] = []  # (first request index, merged range)
    for index, current in sorted(enumerate(ranges), key=lambda item: item[1].start):
        if groups and current.start <= groups[-1][1].stop:
            first, last = groups[-1]
            groups[-1] = (min(first, index), ByteRange(last.start, max(last.stop, current.stop)))
        else:
            groups.append((index, current))
    groups.sort(key=lambda group: group[0])
    return tuple(merged for _, merged in groups)


def evaluate_range(
    method: bytes,
    headers: Sequence[tuple[bytes, bytes]],
    *,
    length: int,
    etag: ETag | None = None,
    last_modified: float | None = None,
    now: float | None = None,
    limits: RangeLimits | None = None,
) -> RangeDecision:
    """Decide 200, 206 or 416 for a request on a representation of ``length`` bytes.

    Call it after :func:`tether.conditional.evaluate_preconditions` said PROCEED
    (RFC 9110 section 13.2.2 puts Range last). ``etag``, ``last_modified`` and
    ``now`` serve ``If-Range``.
    """
    limits = limits if limits is not None else _DEFAULT_LIMITS
    full = RangeDecision(200)
    if method != b"GET":  # method tokens are case-sensitive (RFC 9110 section 9.1)
        return full
    values = [value for name, value in headers if name.lower() == b"range"]
    if len(values) != 1:
        # Range is a singleton field: absent, or sent twice and so invalid.
        return full
    if_range = [value for name, value in headers if name.lower() == b"if-range"]
    if if_range and (
        len(if_range) != 1
        or not if_range_matches(if_range[0], etag=etag, last_modified=last_modified, now=now)
    ):
        return full
    specs = parse_range(values[0])
    if specs is None or len(specs) > limits.max_ranges:
        return full
    ranges = _satisfiable(specs, length)
    if not ranges:
        if length == 0 and any(spec.suffix for spec in specs):
            return full
        return RangeDecision(416, headers=((b"content-range", b"bytes */%d" % length),))
    if len(ranges) > 1 and _overlapping(ranges) > limits.max_overlapping:
        return full
    merged = _coalesce(ranges)
    if len(merged) == 1:
        return RangeDecision(206, merged, ((b"content-range", merged[0].content_range(length)),))
    return RangeDecision(206, merged)


_DEFAULT_LIMITS = RangeLimits()


@dataclass(frozen=True, slots=True)
class Byteranges:
    """A laid-out ``multipart/byteranges`` body (RFC 9110 section 14.6).

    ``content_type`` and ``content_length`` are the response's field values;
    :meth:`pieces` streams the body.
    """

    ranges: tuple[ByteRange, ...]
    complete_length: int
    boundary: bytes
    part_heads: tuple[bytes, ...]
    closing: bytes

    @property
    def content_type(self) -> bytes:
        """``multipart/byteranges; boundary=...``."""
        return b"multipart/byteranges; boundary=" + self.boundary

    @property
    def content_length(self) -> int:
        """The exact body length, known before the first byte is produced."""
        return (
            sum(len(head) for head in self.part_heads)
            + sum(r.length for r in self.ranges)
            + len(self.closing)
        )

    def headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """Content-Type and Content-Length for the 206."""
        return (
            (b"content-type", self.content_type),
            (b"content-length", b"%d" % self.content_length),
        )

    def pieces(
        self, read: Callable[[int, int], bytes], chunk_size: int = 64 * 1024
    ) -> Iterator[bytes]:
        """The body as byte pieces; ``read(offset, size)`` must return exactly ``size`` bytes."""
        for head, byte_range in zip(self.part_heads, self.ranges, strict=True):
            yield head
            offset = byte_range.start
            while offset < byte_range.stop:
                size = min(chunk_size, byte_range.stop - offset)
                data = read(offset, size)
                if len(data) != size:
                    raise RangeReadError(f"read({offset}, {size}) returned {len(data)} bytes")
                yield data
                offset += size
        yield self.closing


_BOUNDARY_RE = re.compile(rb"[0-9A-Za-z'()+_,\-./:=?]{1,70}")


def byteranges(
    ranges: Sequence[ByteRange],
    complete_length: int,
    *,
    boundary: bytes,
    content_type: bytes | None = None,
) -> Byteranges:
    """Lay out a multipart/byteranges body for ``ranges`` of a ``complete_length`` representation.

    ``boundary`` (1-70 bchars, no spaces) must not occur in the representation;
    a random one such as ``secrets.token_hex(16).encode()`` is the usual choice.
    ``content_type`` is the representation's type, repeated in each part.
    """
    if _BOUNDARY_RE.fullmatch(boundary) is None:
        raise LocalProtocolError(f"invalid multipart boundary {boundary!r}")
    heads = []
    for index, byte_range in enumerate(ranges):
        head = (b"--" if index == 0 else b"\r\n--") + boundary + b"\r\n"
        if content_type is not None:
            head += b"content-type: " + content_type + b"\r\n"
        head += b"content-range: " + byte_range.content_range(complete_length) + b"\r\n\r\n"
        heads.append(head)
    return Byteranges(
        tuple(ranges), complete_length, boundary, tuple(heads), b"\r\n--" + boundary + b"--\r\n"
    )
