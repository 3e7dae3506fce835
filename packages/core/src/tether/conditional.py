"""Conditional requests (RFC 9110 section 13): validators, preconditions, 304 and 412.

:func:`evaluate_preconditions` applies ``If-Match``, ``If-Unmodified-Since``,
``If-None-Match`` and ``If-Modified-Since`` in the order of RFC 9110 section
13.2.2 and answers :data:`Precondition.PROCEED`, ``NOT_MODIFIED`` (304) or
``FAILED`` (412). ``If-Range`` belongs with Range and lives in :mod:`tether.ranges`.

Callers evaluate preconditions only when the response without them would be
2xx (RFC 9110 section 13.2.1); the core does not know that, the server does.

Where the RFC leaves malformed fields open, the choice is the safe one: a
malformed ``If-Match`` never matches (the unsafe method is refused with 412);
a malformed ``If-None-Match`` never matches (the full response is sent); a
malformed date is ignored, as section 13.1.3 and 13.1.4 require.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tether.errors import LocalProtocolError
from tether.httpdate import format_http_date, parse_http_date

__all__ = [
    "ETag",
    "InvalidETag",
    "Precondition",
    "evaluate_preconditions",
    "format_last_modified",
    "parse_etag",
    "parse_etag_list",
]


class InvalidETag(LocalProtocolError):
    """An :class:`ETag` was built from bytes that are not ``etagc`` (RFC 9110 section 8.8.3)."""


@dataclass(frozen=True, slots=True)
class ETag:
    """An entity tag (RFC 9110 section 8.8.3): the opaque bytes between the quotes, and weakness."""

    opaque: bytes
    weak: bool = False

    def __post_init__(self) -> None:
        if _ETAGC_RE.fullmatch(self.opaque) is None:
            raise InvalidETag(f"invalid entity-tag characters in {self.opaque!r}")

    def to_bytes(self) -> bytes:
        """The field value: ``"xyz"`` or ``W/"xyz"``."""
        return (b'W/"' if self.weak else b'"') + self.opaque + b'"'

    def strong_match(self, other: ETag) -> bool:
        """RFC 9110 section 8.8.3.2: both strong and the same opaque tag."""
        return not self.weak and not other.weak and self.opaque == other.opaque

    def weak_match(self, other: ETag) -> bool:
        """RFC 9110 section 8.8.3.2: the same opaque tag, weakness ignored."""
        return self.opaque == other.opaque


class Precondition(enum.Enum):
    """The outcome of the preconditions; ``status`` is the response status to send, if any."""

    PROCEED = None
    NOT_MODIFIED = 304
    FAILED = 412

    @property
    def status(self) -> int | None:
        """304, 412, or ``None`` for "perform the method"."""
        value: int | None = self.value
        return value


# etagc = %x21 / %x23-7E / obs-text
_ETAGC_RE = re.compile(rb"[\x21\x23-\x7e\x80-\xff]*")
_ETAG_RE = re.compile(rb'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')
# One element of #entity-tag: OWS, an entity-tag or nothing, OWS, then "," or the end. The
# second OWS follows a tag only, so a run of spaces is read one way (two OWS around an optional
# tag made a failing match try every split of the run: quadratic).
_LIST_ITEM_RE = re.compile(rb'[ \t]*(?:(W/)?"([\x21\x23-\x7e\x80-\xff]*)"[ \t]*)?(?:,|\Z)')

_SAFE_GET = frozenset({b"GET", b"HEAD"})


def parse_etag(value: bytes) -> ETag | None:
    """One entity-tag (an ``ETag`` field value or an ``If-Range`` tag); ``None`` if malformed."""
    match = _ETAG_RE.fullmatch(value.strip(b" \t"))
    if match is None:
        return None
    return ETag(match.group(2), weak=match.group(1) is not None)


def parse_etag_list(value: bytes) -> list[ETag] | bool | None:
    """An ``If-Match`` / ``If-None-Match`` value: ``True`` for ``*``, the tags, or ``None``.

    Empty list elements are allowed (RFC 9110 section 5.6.1.2); ``*`` must stand alone.
    """
    stripped = value.strip(b" \t")
    if stripped == b"*":
        return True
    tags: list[ETag] = []
    pos = 0
    end = len(stripped)
    while pos < end:
        match = _LIST_ITEM_RE.match(stripped, pos)
        if match is None or match.end() == pos:
            return None
        pos = match.end()
        if match.group(2) is not None:
            tags.append(ETag(match.group(2), weak=match.group(1) is not None))
    return tags if tags else None


def format_last_modified(timestamp: float) -> bytes:
    """A ``Last-Modified`` value (IMF-fixdate) for a modification time."""
    return format_http_date(timestamp)


def _field(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [value for field, value in headers if field.lower() == name]


def _single_date(values: list[bytes], now: float | None) -> float | None:
    """The date of a date field sent once with one valid HTTP-date; else ``None`` (ignored)."""
    if len(values) != 1:
        return None
    return parse_http_date(values[0], now=now)


def evaluate_preconditions(
    method: bytes,
    headers: Sequence[tuple[bytes, bytes]],
    *,
    etag: ETag | None = None,
    last_modified: float | None = None,
    exists: bool = True,
    now: float | None = None,
) -> Precondition:
    """Evaluate the request's preconditions against the selected representation.

    ``etag`` and ``last_modified`` (a POSIX timestamp) describe the current
    representation; ``exists`` is False when there is none (``If-Match: *``
    fails, ``If-None-Match: *`` passes). ``now``, the time the server would put
    in ``Date``, makes a future ``If-Modified-Since`` invalid (RFC 9110 section
    13.1.3) and anchors two-digit years; without it neither check is made.
    Several field lines of one list field are combined, as RFC 9110 section 5.3 allows.
    ``method`` is compared case-sensitively (RFC 9110 section 9.1): ``b"get"`` is not GET.
    """
    if_match = _field(headers, b"if-match")
    # Step 1: If-Match.
    if if_match:
        if not _if_match(b",".join(if_match), etag, exists):
            return Precondition.FAILED
    else:
        # Step 2: If-Unmodified-Since, only without If-Match.
        since = _single_date(_field(headers, b"if-unmodified-since"), now)
        if since is not None and last_modified is not None and math.floor(last_modified) > since:
            return Precondition.FAILED
    # Step 3: If-None-Match.
    if_none_match = _field(headers, b"if-none-match")
    if if_none_match:
        if not _if_none_match(b",".join(if_none_match), etag, exists):
            return Precondition.NOT_MODIFIED if method in _SAFE_GET else Precondition.FAILED
    elif method in _SAFE_GET:
        # Step 4: If-Modified-Since, only for GET and HEAD and without If-None-Match.
        since = _single_date(_field(headers, b"if-modified-since"), now)
        if (
            since is not None
            and (now is None or since <= now)
            and last_modified is not None
            and math.floor(last_modified) <= since
        ):
            return Precondition.NOT_MODIFIED
    return Precondition.PROCEED


def _if_match(value: bytes, etag: ETag | None, exists: bool) -> bool:
    """RFC 9110 section 13.1.1: ``*`` if a representation exists, else a strong match."""
    tags = parse_etag_list(value)
    if tags is True:
        return exists
    if not tags or etag is None or not exists:
        return False
    assert isinstance(tags, list)
    return any(etag.strong_match(tag) for tag in tags)


def _if_none_match(value: bytes, etag: ETag | None, exists: bool) -> bool:
    """RFC 9110 section 13.1.2: false if ``*`` and a representation exists, or a weak match."""
    tags = parse_etag_list(value)
    if tags is True:
        return not exists
    if not tags or etag is None or not exists:
        return True
    assert isinstance(tags, list)
    return not any(etag.weak_match(tag) for tag in tags)
