"""Tables and checks shared by the head parser and the body readers.

The reader's phases, the byte tables that check bytes in one C call, the
constants of the wire format, and the checks a head and a trailer section
share (line endings, framing-field lookalikes, the precise diagnosis of a
bad field line). Everything here is built at import and never changes, so
nothing one client sends changes how another's bytes are read.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable

from tether.errors import BadRequest, HeaderLineTooLong, InvalidFraming, TooManyHeaders
from tether.http1._abnf import FIELD_BLOCK, FIELD_LINE
from tether.http1._events import EndOfMessage
from tether.limits import Limits


class Phase(enum.Enum):
    """What the reader expects next."""

    __hash__ = object.__hash__

    HEAD = "HEAD"
    FIXED = "FIXED"  # Content-Length body (also the empty body)
    CHUNK_LINE = "CHUNK_LINE"
    CHUNK_DATA = "CHUNK_DATA"
    CHUNK_CRLF = "CHUNK_CRLF"
    TRAILERS = "TRAILERS"
    UNTIL_CLOSE = "UNTIL_CLOSE"  # a body that ends at EOF (a response without framing)
    DONE = "DONE"  # the message is complete; waiting for the next cycle


# Enum members as module globals: Phase.X is an attribute look-up through the enum
# metaclass (about ten times slower than a global) on paths run for every request.
P_HEAD = Phase.HEAD
P_FIXED = Phase.FIXED
P_CHUNK_LINE = Phase.CHUNK_LINE
P_CHUNK_DATA = Phase.CHUNK_DATA
P_CHUNK_CRLF = Phase.CHUNK_CRLF
P_TRAILERS = Phase.TRAILERS
P_UNTIL_CLOSE = Phase.UNTIL_CLOSE
P_DONE = Phase.DONE


# Byte tables for bytes.translate, which maps through a 256-byte table in one C loop (a
# deletion set would rebuild its table on every call). A byte a check refuses maps to NUL, so
# "no NUL in the result" is the check (NUL itself is refused everywhere). It is written
# ``0 in result``: with a bytes needle, ``in`` first tries it as an integer and raises and
# clears a TypeError, which costs about eight times the search itself.
def _table(allowed: bytes) -> bytes:
    return bytes(b if b in allowed else 0 for b in range(256))


# Bytes allowed inside a field line: HTAB, SP, VCHAR, obs-text. CR and LF appear only in the
# CRLF pairs the head was split on; a bare one maps to NUL.
_LINE_TABLE = _table(bytes(b for b in range(256) if b == 0x09 or 0x20 <= b != 0x7F))
# RFC 9110 5.6.2: tchar (field names).
_TCHAR_TABLE = _table(
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


# tchar lowercased, and LF (the separator _parse_fields joins names with); others map to NUL.
_NAME_CHECK_TABLE = bytes(b if b == 0x0A else _TCHAR_TABLE[b] for b in range(256)).lower()
_HEX_BYTES = b"0123456789abcdefABCDEF"

_VISIBLE_ASCII = bytes(range(0x21, 0x7F))


EMPTY_EOM = EndOfMessage()

# Fields that must not arrive as trailers. RFC 9110 6.5.1: fields needed "prior to receiving
# the content, such as those that describe message framing, routing, authentication, request
# modifiers, response controls, or content format" cannot be processed as trailers; a
# recipient MAY discard them, we refuse the message so no later component can merge them.
_FORBIDDEN_TRAILERS = frozenset(
    (
        b"content-length",
        b"transfer-encoding",
        b"trailer",
        b"host",
        b"connection",
        b"keep-alive",
        b"upgrade",
        b"te",
        b"expect",
        b"content-type",
        b"content-encoding",
        b"content-range",
        b"range",
        b"authorization",
        b"proxy-authorization",
        b"cookie",
    )
)
# A check run on partial input: (accumulated bytes, first new index, end).
_PartialCheck = Callable[[bytearray, int, int], None]

_HEAD_TERMINATOR = b"\r\n\r\n"
_HEAD_TERMINATOR_SCAN_BACK = len(_HEAD_TERMINATOR) - 1
_CRLF = b"\r\n"
_LAST_CHUNK = b"0\r\n\r\n"


# RFC 9110 5.1 and RFC 9112 6: the framing fields are exactly Content-Length and
# Transfer-Encoding. A name that differs from one of them only in "_", "." or "-" (or their
# absence) is a valid token, yet a proxy or gateway that maps "_" to "-" (CGI-style
# environments do, and so do some proxies) would take it for the real field and frame the
# message differently than we do: request smuggling. We are stricter than the RFCs ask and
# refuse the message.
_NAME_SEPARATORS = b"-_."
_FRAMING_NAMES = {b"contentlength": b"content-length", b"transferencoding": b"transfer-encoding"}


def _refuse_framing_lookalikes(names: Iterable[bytes]) -> None:
    """Refuse a lowercase field name that only looks like Content-Length or Transfer-Encoding."""
    for name in names:
        real = _FRAMING_NAMES.get(name.translate(None, _NAME_SEPARATORS))
        if real is not None and name != real:
            raise InvalidFraming(
                f"field name {name.decode('ascii')!r} looks like {real.decode('ascii')!r}: "
                "refused so that no proxy can take it for a framing field"
            )


# ---- diagnostics: only run once a fast check has failed -----------------------------------------


def _check_line_endings(buf: bytes | bytearray, start: int, stop: int) -> None:
    """Refuse a bare LF, or a CR not followed by LF, in ``buf[start:stop]``.

    RFC 9112 2.2 lets a recipient accept a bare LF as a line terminator and
    replace a bare CR; both leniencies enable request smuggling, so we refuse.
    A CR in the last byte may still be followed by its LF and is left alone.
    """
    i = buf.find(b"\n", start, stop)
    while i >= 0:
        if i == 0 or buf[i - 1] != 0x0D:
            raise BadRequest("bare LF: lines must end with CRLF")
        i = buf.find(b"\n", i + 1, stop)
    i = buf.find(b"\r", start, stop)
    while i >= 0:
        if i + 1 < stop and buf[i + 1] != 0x0A:
            raise BadRequest("bare CR in the message")
        i = buf.find(b"\r", i + 1, stop)


def _field_lines_fit(buf: bytes, start: int, stop: int, limit: int) -> bool:
    return max(map(len, buf[start:stop].split(b"\r\n"))) <= limit


def _check_field_line_lengths(buf: bytes, start: int, stop: int, limit: int) -> None:
    if not _field_lines_fit(buf, start, stop, limit):
        raise HeaderLineTooLong(f"a field line is over the limit of {limit} bytes")


def _diagnose_fields(buf: bytes, start: int, stop: int, limits: Limits, *, what: str) -> None:
    _check_line_endings(buf, start, stop)
    for count, line in enumerate(buf[start:stop].split(b"\r\n")[:-1], 1):
        if len(line) > limits.max_header_line:
            raise HeaderLineTooLong(f"a {what} line is over the limit of {limits.max_header_line}")
        if count > limits.max_header_count:
            raise TooManyHeaders(f"more than {limits.max_header_count} {what} fields")
        if line[:1] in (b" ", b"\t"):
            raise BadRequest(f"obsolete line folding in a {what} field")
        name, colon, _ = line.partition(b":")
        if not colon:
            raise BadRequest(f"{what} line without a colon")
        if name[-1:] in (b" ", b"\t"):
            raise BadRequest(f"whitespace between a {what} field name and the colon")
        if FIELD_LINE.fullmatch(line + b"\r\n") is None:
            if FIELD_BLOCK.fullmatch(name + b":\r\n") is None:
                raise BadRequest(f"invalid character in a {what} field name")
            raise BadRequest(f"invalid character in a {what} field value")
    raise BadRequest(f"malformed {what} section")


def _chunk_size(line: bytes) -> int | None:
    """The size a chunk-size line of only hex digits gives, else None."""
    # Only hex digits: int() alone would also take "0x", "_", signs and spaces.
    if not line or line.translate(None, _HEX_BYTES):
        return None
    return int(line, 16)


# Runs of chunks of one power-of-two size (what a sender chunking from a fixed buffer sends),
# read by one regex match per run of up to _RUN_DEPTH chunks: the match checks every size
# line and CRLF of the run and hands back each chunk's data as a group. The patterns are made
# at import (a few milliseconds), keyed by size lines no client chooses, and never change, so
# what one client sends cannot change how fast another's body is read.
_RUN_DEPTH = 8
_RUN_END = _RUN_DEPTH + 1  # the group that matches when the last chunk follows the run
_RUN_MAX_SIZE_LOG2 = 20

_RunMatch = Callable[[bytes, int], "re.Match[bytes] | None"]


def _run_pattern(line: bytes, size: int) -> _RunMatch:
    """``match`` of a pattern for 1 to _RUN_DEPTH whole chunks of ``size``, size line ``line``."""
    tile = re.escape(line) + rb"\r\n(.{%d})\r\n" % size
    pattern = tile
    for _ in range(_RUN_DEPTH - 1):
        pattern = tile + b"(?:" + pattern + b")?"
    # Then the last chunk with an empty trailer section, if it follows: its empty group is
    # the last one, so ``lastindex`` tells whether it matched, and it adds nothing to the data.
    return re.compile(pattern + rb"(?:0\r\n\r\n())?", re.DOTALL).match


_RUNS: dict[bytes, _RunMatch] = {
    b"%x" % (1 << n): _run_pattern(b"%x" % (1 << n), 1 << n) for n in range(_RUN_MAX_SIZE_LOG2 + 1)
}
_RUNS_GET = _RUNS.get
