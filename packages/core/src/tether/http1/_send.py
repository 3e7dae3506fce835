"""Writing responses: the status line, fields, and the choice of framing.

The caller's fields are validated by byte tables, each one C call over all the
names or all the values, so a value carrying CR or LF (response splitting) is
refused.
The core owns ``Connection`` and ``Transfer-Encoding``: it writes them from its
own keep-alive and framing decisions.
"""

from __future__ import annotations

import enum
import http
from email.utils import formatdate

from tether.errors import LocalProtocolError
from tether.http1._abnf import REASON
from tether.http1._events import Headers


class Framing(enum.Enum):
    """How the body of the response being sent is delimited."""

    #: No body may be sent (1xx, 204, 304); non-empty Data is an error.
    NONE = "NONE"
    #: The response to HEAD: body bytes are accepted and dropped.
    DROP = "DROP"
    #: Content-Length: exactly that many bytes.
    LENGTH = "LENGTH"
    #: Transfer-Encoding: chunked.
    CHUNKED = "CHUNKED"
    #: Delimited by closing the connection (HTTP/1.0 of unknown length).
    CLOSE = "CLOSE"


# RFC 9110 renamed a few status codes that older Pythons' http.HTTPStatus still calls by
# their RFC 7231 and RFC 2616 names; the RFC 9110 name wins (Python 3.13 agrees).
_RFC9110_PHRASES = {
    413: "Content Too Large",  # RFC 9110 15.5.14
    414: "URI Too Long",  # 15.5.15
    416: "Range Not Satisfiable",  # 15.5.17
    422: "Unprocessable Content",  # 15.5.21
}


def reason_phrase(status_code: int) -> str:
    """The reason phrase RFC 9110 (or the IANA registry) gives ``status_code``; ``""`` if none.

    For a server writing its own status line (a WSGI ``status`` string, a log line): the
    same phrase the core writes when a response's ``reason`` is empty.
    """
    phrase = _RFC9110_PHRASES.get(status_code)
    if phrase is not None:
        return phrase
    try:
        return http.HTTPStatus(status_code).phrase
    except ValueError:
        return ""


_STATUS_LINES: dict[int, bytes] = {
    status.value: b"HTTP/1.1 %d %s\r\n" % (status.value, reason_phrase(status.value).encode())
    for status in http.HTTPStatus
}


#: The same lines by code and standard phrase: a WSGI status is always given with its phrase.
_STATUS_LINES_WITH_REASON: dict[tuple[int, bytes], bytes] = {
    (code, line[13:-2]): line for code, line in _STATUS_LINES.items() if len(line) > 15
}


def status_line(status_code: int, reason: bytes) -> bytes:
    """The status line for ``status_code``, with ``reason`` or the standard phrase."""
    if not reason:
        line = _STATUS_LINES.get(status_code)
        if line is not None:
            return line
        return b"HTTP/1.1 %d \r\n" % status_code
    if REASON.fullmatch(reason) is None:
        raise LocalProtocolError("reason phrase contains a control character")
    return b"HTTP/1.1 %d %s\r\n" % (status_code, reason)


_NONE = Framing.NONE
_DROP = Framing.DROP
_LENGTH = Framing.LENGTH
_CHUNKED = Framing.CHUNKED
_CLOSE = Framing.CLOSE
_TCHARS = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def fields_ok(headers: Headers, block: bytes, count: int) -> bool:
    """Whether ``block`` (``count`` serialized field lines) is exactly those fields, valid.

    Every name is a non-empty token; every other byte of the block is HTAB, SP,
    VCHAR or obs-text, except the CRLF ending each line. A value holding CRLF
    would make two valid lines out of one field (response splitting), and a
    name holding ':' would move bytes from the name into the value, so the CR
    and LF counts must equal the number of lines. Each check is one C call over
    the whole block.
    """
    names = [field[0] for field in headers]
    return b"" not in names and _block_ok(b"\n".join(names), block, count)


def _block_ok(joined_names: bytes, block: bytes, count: int) -> bool:
    """``fields_ok`` given the names joined by LF (none of them empty)."""
    return (
        block.count(b"\n") == count
        and block.count(b"\r") == count
        and 0 not in block.translate(_FIELD_BLOCK_TABLE)
        and 0 not in joined_names.translate(_NAME_TABLE)
    )


def _names_ok(names: list[bytes]) -> bool:
    """Whether every name is a non-empty token."""
    return b"" not in names and 0 not in b"".join(names).translate(_TOKEN_TABLE)


# tchar; every other byte maps to NUL.
_TOKEN_TABLE = bytes(b if bytes([b]) in _TCHARS else 0 for b in range(256))
# tchar, and LF (the separator names are joined with); every other byte maps to NUL.
_NAME_TABLE = bytes(b if b == 0x0A or bytes([b]) in _TCHARS else 0 for b in range(256))
# HTAB, SP, VCHAR and obs-text (a field value's bytes); every other byte maps to NUL.
_VALUE_TABLE = bytes(b if b == 0x09 or 0x20 <= b != 0x7F else 0 for b in range(256))
# HTAB, CR, LF, SP, VCHAR and obs-text; every other byte (NUL included) maps to NUL.
_FIELD_BLOCK_TABLE = bytes(
    b if b in (0x09, 0x0A, 0x0D) or 0x20 <= b != 0x7F else 0 for b in range(256)
)


# The fields the core writes itself from its own decisions.
OWNED = frozenset((b"content-length", b"transfer-encoding", b"connection"))
# Those, and the fields a server adds when the application gave none (write_response's date
# and server): the names its one pass over the fields stops at.
_SPECIAL = OWNED | {b"date", b"server"}

# Field names responses carry most often, lowercase and capitalized, each mapped to its
# lowercase form: a name found here needs neither lowercasing nor the token check. Built at
# import from this fixed list and never changed, so nothing a client or an application sends
# changes it (or how fast another response is written).
_COMMON_NAMES = (
    b"accept-ranges access-control-allow-origin age allow cache-control connection "
    b"content-disposition content-encoding content-language content-length content-range "
    b"content-security-policy content-type date etag expires keep-alive last-modified link "
    b"location referrer-policy retry-after server set-cookie strict-transport-security "
    b"transfer-encoding vary www-authenticate x-content-type-options x-frame-options "
    b"x-request-id"
).split()
_KNOWN_NAMES: dict[bytes, bytes] = {
    spelling: name
    for name in _COMMON_NAMES
    for spelling in (name, b"-".join(word.capitalize() for word in name.split(b"-")))
}


def write_informational(status_code: int, headers: Headers, reason: bytes) -> bytes:
    """Serialize a 1xx response head; fields are passed through as given (validated)."""
    if not 100 <= status_code < 200:
        raise LocalProtocolError(f"{status_code} is not an informational status")
    return _write_head(status_code, headers, reason)


def write_tunnel(status_code: int, headers: Headers, reason: bytes) -> bytes:
    """Serialize a 2xx response to CONNECT, after which the connection is a tunnel.

    RFC 9110 9.3.6: "A server MUST NOT send any Transfer-Encoding or
    Content-Length header fields in a 2xx (Successful) response to CONNECT."
    """
    try:
        framing = any(name.lower() in _FRAMING_FIELDS for name, _ in headers)
    except AttributeError:
        raise LocalProtocolError("header names and values must be bytes") from None
    if framing:
        raise LocalProtocolError("a 2xx response to CONNECT has no Content-Length or framing")
    return _write_head(status_code, headers, reason)


_FRAMING_FIELDS = frozenset((b"content-length", b"transfer-encoding"))


def _write_head(status_code: int, headers: Headers, reason: bytes) -> bytes:
    """A status line and the fields as given (validated), with no framing of the core's own."""
    lines = [status_line(status_code, reason)]
    try:
        lines.extend(b"%s: %s\r\n" % (name, value) for name, value in headers)
    except TypeError:
        raise LocalProtocolError("header names and values must be bytes") from None
    block = b"".join(lines[1:])
    if not fields_ok(headers, block, len(headers)):
        raise LocalProtocolError("invalid header field name or value")
    lines.append(b"\r\n")
    return b"".join(lines)


def write_response(  # noqa: PLR0917 - called positionally on every response
    status_code: int,
    headers: Headers,
    reason: bytes,
    head_request: bool,
    http10: bool,
    keep_alive: bool,
    date: bytes | None = None,
    server: bytes | None = None,
    strip_transfer_encoding: bool = False,
    declare: int | None = None,
) -> tuple[bytes, Framing, int, bool]:
    """Serialize a final response head and decide its framing.

    Returns ``(head_bytes, framing, content_length, keep_alive)``; keep-alive can
    only be turned off here (by the caller's ``Connection: close`` or by framing
    that needs the connection closed). A server's defaults are written in the same
    pass: ``date`` and ``server`` (values) when the fields have no Date or Server,
    any Transfer-Encoding dropped when ``strip_transfer_encoding`` (ASGI: framing
    is the server's), and a Content-Length of ``declare`` bytes when none is given
    and the response has a body (a body known whole).
    """
    if not 200 <= status_code < 600:
        raise LocalProtocolError(f"{status_code} is not a final status code (200-599)")
    content_length: bytes | None = None
    chunked_given = False
    # The head as a flat list of pieces, joined once at the end: the status line (a standard
    # one looked up, else built and checked), then four pieces per field.
    if not reason:
        line = _STATUS_LINES.get(status_code)
    elif type(reason) is bytes:
        line = _STATUS_LINES_WITH_REASON.get((status_code, reason))
    else:
        line = None
    parts = [line if line is not None else status_line(status_code, reason)]
    append = parts.append
    unchecked = False
    try:
        for name, value in headers:
            lname = _KNOWN_NAMES.get(name)
            if lname is None:
                lname = name.lower()
                unchecked = True
            if lname in _SPECIAL:
                # The core's own fields are not written as given (it writes a Content-Length
                # of digits, and its framing and keep-alive); Date and Server are.
                if lname == b"content-length":
                    if content_length is not None and content_length != value:
                        raise LocalProtocolError("conflicting Content-Length fields")
                    if not value.isdigit():
                        raise LocalProtocolError("Content-Length is not a decimal integer")
                    content_length = value
                    continue
                if lname == b"date":
                    date = None
                elif lname == b"server":
                    server = None
                elif lname == b"transfer-encoding":
                    if strip_transfer_encoding:
                        continue
                    if value.strip(b" \t").lower() != b"chunked":
                        raise LocalProtocolError("only the chunked transfer coding can be sent")
                    chunked_given = True
                    continue
                else:  # connection
                    if b"close" in value.lower():
                        keep_alive = False
                    continue
            parts += (name, b": ", value, b"\r\n")
        if date is not None:
            parts += (b"date", b": ", date, b"\r\n")
        if server is not None:
            parts += (b"server", b": ", server, b"\r\n")
        # The names written as given, one in four pieces after the status line, are checked
        # unless each is a known name (the ones the core owns matched one, so are tokens too).
        names_ok = not unchecked or _names_ok(parts[1::4])
        # The values, one in four pieces from the fourth: HTAB, SP, VCHAR and obs-text only,
        # so no CR or LF (response splitting) and no other control byte.
        values_ok = 0 not in b"".join(parts[3::4]).translate(_VALUE_TABLE)
    except (TypeError, AttributeError):
        raise LocalProtocolError("header names and values must be bytes") from None
    if not names_ok:
        raise LocalProtocolError("invalid header field name (not a token)")
    if not values_ok:
        raise LocalProtocolError("invalid header field value (CR, LF or a control byte)")
    if (
        declare is not None
        and content_length is None
        and not head_request
        and status_code not in (204, 304)
    ):
        content_length = b"%d" % declare
    if content_length is not None and chunked_given:
        raise LocalProtocolError("both Content-Length and Transfer-Encoding given")

    length = 0
    if status_code in (204, 304) or head_request:
        # RFC 9110 8.6: no Content-Length in a 204. A 304 or a HEAD response may carry the
        # length the full response would have had.
        framing = _DROP if head_request and status_code not in (204, 304) else _NONE
        if content_length is not None and status_code != 204:
            parts += (b"content-length: ", content_length, b"\r\n")
    elif content_length is not None:
        framing = _LENGTH
        length = int(content_length)
        parts += (b"content-length: ", content_length, b"\r\n")
    elif http10:
        framing = _CLOSE
        keep_alive = False
    else:
        framing = _CHUNKED
        append(b"transfer-encoding: chunked\r\n")
    if not keep_alive:
        append(b"connection: close\r\n")
    elif http10:
        append(b"connection: keep-alive\r\n")
    append(b"\r\n")
    # Every piece is checked now: the status line (looked up or checked), the names and values
    # above, and the core's own lines.
    try:
        return b"".join(parts), framing, length, keep_alive
    except TypeError:
        # A str Content-Length (the only piece not joined above): refused rather than encoded,
        # so that no guess at an encoding decides what goes on the wire. Encode it yourself.
        raise LocalProtocolError("header names and values must be bytes, not str") from None


_date_cache: tuple[int, tuple[bytes, bytes]] = (-1, (b"date", b""))


def date_header(now: float) -> tuple[bytes, bytes]:
    """``(b"date", IMF-fixdate)`` for the wall-clock time ``now`` (seconds since the epoch).

    Cached per whole second, so a server may call it for every response.
    """
    global _date_cache
    second = int(now)
    cached_second, header = _date_cache
    if cached_second != second:
        header = (b"date", formatdate(second, usegmt=True).encode("ascii"))
        _date_cache = (second, header)
    return header
