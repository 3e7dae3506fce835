"""Reading one part's header section and the boundary of a ``multipart/form-data`` body.

Pure functions of bytes (and a parser's own bounded table of text-field heads) that
:class:`tether.multipart.MultipartParser` calls; ``parse_boundary`` and ``parser_for``
are public there.
"""

from __future__ import annotations

import re
import sys

from tether._multipart_events import (
    InvalidBoundary,
    MalformedPartHeaders,
    MultipartLimits,
    PartHeadersTooLarge,
    PartStart,
)
from tether._params import decode_ext_value, parse_parameters

# ---- header parsing ---------------------------------------------------------------------------

_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_HEADER_LINE_RE = re.compile(rb"(" + _TOKEN + rb"):([^\x00-\x08\x0a-\x1f\x7f]*)")
# The shape every browser sends, matched in one go: the common case skips general parsing.
_PLAIN_NAME = rb'"([^"\\\x00-\x1f\x7f]*)"'
_FAST_HEADERS_RE = re.compile(
    rb"Content-Disposition: (form-data; name="
    + _PLAIN_NAME
    + rb"(?:; filename="
    + _PLAIN_NAME
    + rb")?)(?:\r\nContent-Type: ("
    + _TOKEN
    + rb"/"
    + _TOKEN
    + rb"))?"
)
# The same, from the CRLF ending the boundary line through the empty line: the hot path
# for forms goes from one delimiter to the next part's content with this one match.
_FAST_PART_RE = re.compile(b"\r\n" + _FAST_HEADERS_RE.pattern + b"\r\n\r\n")
_SIMPLE_FIELD = b'\r\nContent-Disposition: form-data; name="'
_SIMPLE_FIELD_LEN = len(_SIMPLE_FIELD)
_BOUNDARY_RE = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_IDENTITY_CTE = frozenset({b"7bit", b"8bit", b"binary"})
_NO_LIMIT = sys.maxsize
_DEFAULT_LIMITS = MultipartLimits()
# "The delimiter has not been searched for yet" (find() itself returns -1 or an index).
_UNKNOWN = -2


def parse_boundary(content_type: bytes | str) -> bytes:
    """The boundary of a ``multipart/form-data`` Content-Type value.

    Raises :class:`InvalidBoundary` unless the type is ``multipart/form-data``
    and the boundary is 1-70 characters of RFC 2046 ``bchars`` not ending in a space.
    """
    if isinstance(content_type, bytes):
        try:
            content_type = content_type.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidBoundary("Content-Type is not ASCII") from None
    parsed = parse_parameters(content_type.strip(" \t"))
    if parsed is None or parsed[0] != "multipart/form-data":
        raise InvalidBoundary("Content-Type is not a valid multipart/form-data value")
    boundary = parsed[1].get("boundary")
    if boundary is None or _BOUNDARY_RE.fullmatch(boundary) is None:
        raise InvalidBoundary("missing or invalid multipart boundary")
    return boundary.encode("ascii")


# A C1 control (U+0080..U+009F, such as U+009B CSI) in UTF-8. The byte-level patterns refuse
# C0 and DEL in a part's head; these come through as obs-text, and decoded they are the
# controls an RFC 8187 filename* may not decode to either (tether._params): refused alike, so
# neither spelling hands an application a name or file name holding a terminal escape.
_C1_UTF8 = re.compile(rb"\xc2[\x80-\x9f]")


def _decode(value: bytes, what: str) -> str:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPartHeaders(f"{what} is not valid UTF-8") from None
    if b"\xc2" in value and _C1_UTF8.search(value) is not None:
        raise MalformedPartHeaders(f"{what} holds a C1 control character")
    return text


def _parse_disposition(value: bytes) -> tuple[str, str | None]:
    """(name, filename) from a general Content-Disposition value."""
    parsed = parse_parameters(_decode(value, "Content-Disposition"), lenient_backslash=True)
    if parsed is None:
        raise MalformedPartHeaders("malformed Content-Disposition")
    kind, params = parsed
    if kind != "form-data":
        raise MalformedPartHeaders(f"Content-Disposition type {kind!r} is not form-data")
    name = params.get("name")
    if name is None:
        raise MalformedPartHeaders("Content-Disposition has no name parameter")
    filename = params.get("filename")
    extended = params.get("filename*")
    if extended is not None:
        # RFC 8187 section 4.2 / RFC 6266 section 4.3: the extended form wins.
        filename = decode_ext_value(extended)
        if filename is None:
            raise MalformedPartHeaders("malformed filename* (RFC 8187) parameter")
    return name, filename


def _fast_start(fast: re.Match[bytes]) -> PartStart:
    """A PartStart from a match of the browser-shaped head (_FAST_HEADERS_RE's groups)."""
    name, filename, ctype = fast.group(2, 3, 4)
    if ctype is None:
        headers: tuple[tuple[bytes, bytes], ...] = ((b"content-disposition", fast[1]),)
        content_type = None
    else:
        headers = ((b"content-disposition", fast[1]), (b"content-type", ctype))
        content_type = ctype.decode("ascii")
    return PartStart(
        _decode(name, "name"),
        None if filename is None else _decode(filename, "filename"),
        content_type,
        headers,
    )


def _parse_headers(block: bytes, limits: MultipartLimits) -> PartStart:
    """A PartStart from one part's header section (CRLF-separated lines, no final CRLF)."""
    fast = _FAST_HEADERS_RE.fullmatch(block)
    if fast is not None:
        return _fast_start(fast)
    if not block:
        raise MalformedPartHeaders("part has no Content-Disposition header")
    lines = block.split(b"\r\n")
    if len(lines) > limits.max_header_count:
        raise PartHeadersTooLarge("too many part header fields", limit="max_header_count")
    pairs: list[tuple[bytes, bytes]] = []
    disposition: bytes | None = None
    content_type = None
    for line in lines:
        match = _HEADER_LINE_RE.fullmatch(line)
        if match is None:
            # Also refuses obs-fold continuation lines (RFC 9112 section 5.2 deprecates them).
            raise MalformedPartHeaders(f"malformed part header line {line[:64]!r}")
        field = match[1].lower()
        value = match[2].strip(b" \t")
        if field == b"content-disposition":
            if disposition is not None:
                raise MalformedPartHeaders("repeated Content-Disposition")
            disposition = value
        elif field == b"content-type":
            if content_type is not None:
                raise MalformedPartHeaders("repeated Content-Type")
            content_type = _decode(value, "Content-Type")
        elif field == b"content-transfer-encoding" and value.lower() not in _IDENTITY_CTE:
            # RFC 7578 section 4.7: senders must not use it; we cannot decode it, so refuse.
            raise MalformedPartHeaders("Content-Transfer-Encoding other than 7bit/8bit/binary")
        pairs.append((field, value))
    if disposition is None:
        raise MalformedPartHeaders("part has no Content-Disposition header")
    name, filename = _parse_disposition(disposition)
    return PartStart(name, filename, content_type, tuple(pairs))


# PartStart events of browser-shaped text-field heads, by raw name, kept per parser (one
# request body): a form that repeats a field name (``tag=a&tag=b`` as multipart) reuses the
# event and skips decoding and validating the name. Never shared between parsers, so nothing
# one client sends is held, or changes how fast another's body is read. Bounded: a full
# cache is cleared, and only short names are kept (about 256 x 200 bytes per parser at most).
_SIMPLE_STARTS_MAX = 256
_SIMPLE_NAME_MAX = 64


def _simple_start(raw: bytes, starts: dict[bytes, PartStart]) -> PartStart | None:
    """The PartStart for a head ``name="<raw>"``, if ``raw`` needs no unquoting and is UTF-8."""
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None  # the general path raises the right error
    if not name.isprintable() or "\\" in name:
        return None
    start = PartStart(
        name, None, None, ((b"content-disposition", b'form-data; name="' + raw + b'"'),)
    )
    if len(raw) <= _SIMPLE_NAME_MAX:
        if len(starts) >= _SIMPLE_STARTS_MAX:
            starts.clear()
        starts[raw] = start
    return start


def _held_back(buf: bytes, start: int, delimiter: bytes) -> int:
    """Where a possible partial delimiter begins in ``buf[start:]``; ``len(buf)`` if none."""
    n = len(buf)
    k = buf.find(b"\r", max(start, n - len(delimiter) + 1))
    while k >= 0:
        if delimiter.startswith(buf[k:]):
            return k
        k = buf.find(b"\r", k + 1)
    return n
