"""Reading requests: head, Content-Length and chunked bodies, trailers.

The reader owns the receive buffer. A complete head arriving in one piece (the
common case) is parsed with one ``find``, one ``fullmatch`` and one ``findall``.
Partial input is appended to a ``bytearray`` and searched only from where the
last search stopped, so input fed byte by byte costs linear time, and every
limit is checked on the partial input before more memory is spent on it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from tether.errors import (
    BadRequest,
    ContentTooLarge,
    HeaderLineTooLong,
    HeadTooLarge,
    IncompleteMessage,
    InvalidFraming,
    RequestLineTooLong,
    TooManyHeaders,
    UnsupportedTransferCoding,
    UnsupportedVersion,
)
from tether.http1._abnf import (
    ABSOLUTE_FORM,
    AUTHORITY_FORM,
    CHUNK_EXT,
    FIELD_BLOCK,
    FIELD_LINE,
    HEXDIGITS,
    HOST,
    REQUEST_HEAD,
    REQUEST_LINE_ANY_VERSION,
)
from tether.http1._events import NEED_DATA, Data, EndOfMessage, Request, Signal
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
    DONE = "DONE"  # the request is complete; waiting for the next cycle


_V11 = b"1.1"
_V10 = b"1.0"
_EMPTY_EOM = EndOfMessage()
_FRAMING_FIELDS = frozenset(
    (b"host", b"content-length", b"transfer-encoding", b"connection", b"expect", b"upgrade")
)
# RFC 9112 2.2: a server "SHOULD ignore at least one empty line (CRLF) received prior to the
# request-line". We ignore a few, and no more, so that a stream of CRLFs is not free to send.
_MAX_LEADING_EMPTY_LINES = 4

# A check run on partial input: (accumulated bytes, first new index, end).
_PartialCheck = Callable[[bytearray, int, int], None]

_HEAD_TERMINATOR = b"\r\n\r\n"
_HEAD_TERMINATOR_SCAN_BACK = len(_HEAD_TERMINATOR) - 1
_CRLF = b"\r\n"


class RequestReader:
    """Parses the request side of one server connection.

    ``read()`` returns the next event or :data:`NEED_DATA`; it never returns an
    event past the current request's :class:`EndOfMessage` until ``reset()``.
    """

    __slots__ = (
        "acc",
        "buf",
        "chunked",
        "close_requested",
        "eof",
        "expect_continue",
        "http10",
        "keep_alive_requested",
        "limits",
        "phase",
        "pos",
        "received",
        "remaining",
        "request",
        "scan",
        "upgrade",
    )

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        # The buffer is ``buf[pos:]`` (bytes), or ``acc`` while partial input accumulates.
        self.buf = b""
        self.pos = 0
        self.acc: bytearray | None = None
        # Absolute index in ``acc`` up to which partial input has been searched and checked.
        self.scan = 0
        self.eof = False
        self.phase = Phase.HEAD
        self.remaining = 0
        self.received = 0
        self.request: Request | None = None
        self.chunked = False
        self.http10 = False
        self.keep_alive_requested = True
        self.close_requested = False
        self.expect_continue = False
        self.upgrade = False

    # ---- buffer --------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Append received bytes (the caller handles EOF and the size guard)."""
        acc = self.acc
        if acc is not None:
            acc += data
        elif self.pos >= len(self.buf):
            self.buf = data
            self.pos = 0
        else:
            # Leftover plus new bytes: accumulate rather than re-concatenating bytes each time.
            acc = bytearray(self.buf[self.pos :] if self.pos else self.buf)
            acc += data
            self.acc = acc
            self.buf = b""
            self.pos = 0
            self.scan = 0

    def buffered(self) -> int:
        """Bytes received and not yet consumed."""
        if self.acc is not None:
            return len(self.acc)
        return len(self.buf) - self.pos

    def take_remaining(self) -> bytes:
        """Remove and return every unconsumed byte (after a protocol switch)."""
        self.materialize()
        out = self.buf[self.pos :]
        self.buf = b""
        self.pos = 0
        return out

    def materialize(self) -> None:
        """Turn accumulated partial input back into the bytes buffer."""
        if self.acc is not None:
            self.buf = bytes(self.acc)
            self.pos = 0
            self.acc = None
            self.scan = 0

    def _accumulate(self) -> bytearray:
        """Switch to accumulation for an incomplete element at ``pos``."""
        acc = self.acc
        if acc is None:
            acc = bytearray(self.buf[self.pos :] if self.pos else self.buf)
            self.acc = acc
            self.buf = b""
            self.pos = 0
            self.scan = 0
        return acc

    # ---- cycle ---------------------------------------------------------------------------------

    def reset(self) -> None:
        """Prepare for the next request on the same connection."""
        self.phase = Phase.HEAD
        self.remaining = 0
        self.received = 0
        self.request = None
        self.chunked = False
        self.http10 = False
        self.keep_alive_requested = True
        self.close_requested = False
        self.expect_continue = False
        self.upgrade = False

    # ---- dispatch ------------------------------------------------------------------------------

    def read(self) -> Request | Data | EndOfMessage | Signal:
        """Return the next event of the current request, or NEED_DATA."""
        phase = self.phase
        if phase is Phase.HEAD:
            return self._read_head()
        if phase is Phase.FIXED:
            return self._read_fixed()
        return self._read_chunked()

    # ---- head ----------------------------------------------------------------------------------

    def _read_head(self) -> Request | Signal:
        if self.acc is not None:
            if not self._search_accumulated(_HEAD_TERMINATOR, self._check_partial_head):
                return NEED_DATA
        buf = self.buf
        pos = self.pos
        if buf.startswith(_CRLF, pos):
            pos = self._skip_empty_lines(buf, pos)
        end = buf.find(_HEAD_TERMINATOR, pos)
        if end < 0:
            self.pos = pos
            self._accumulate()
            self.scan = 0
            self._check_partial_head(self.acc, 0, len(self.acc))  # type: ignore[arg-type]
            self.scan = max(0, len(self.acc) - _HEAD_TERMINATOR_SCAN_BACK)  # type: ignore[arg-type]
            if self.eof:
                raise IncompleteMessage("connection closed in the middle of a request head")
            return NEED_DATA
        limits = self.limits
        head_end = end + 4
        if head_end - pos > limits.max_head_size:
            raise HeadTooLarge(
                f"request head is {head_end - pos} bytes, over the limit of {limits.max_head_size}"
            )
        m = REQUEST_HEAD.fullmatch(buf, pos, end + 2)
        if m is None:
            _diagnose_head(buf, pos, end + 2, limits)
            raise BadRequest("malformed request head")  # pragma: no cover - diagnose raises
        method, target, major, minor, _ = m.groups()
        fields_start = m.start(5)
        if fields_start - 2 - pos > limits.max_request_line:
            raise RequestLineTooLong(
                f"request line is over the limit of {limits.max_request_line} bytes"
            )
        if major != b"1" or (minor != b"1" and minor != b"0"):
            raise UnsupportedVersion(f"HTTP/{major.decode()}.{minor.decode()} is not supported")
        headers = [(n.lower(), v) for n, v in FIELD_LINE.findall(buf, fields_start, end + 2)]
        if len(headers) > limits.max_header_count:
            raise TooManyHeaders(
                f"{len(headers)} header fields, over the limit of {limits.max_header_count}"
            )
        if end + 2 - fields_start > limits.max_header_line:
            _check_field_line_lengths(buf, fields_start, end + 2, limits.max_header_line)
        self.pos = head_end
        http10 = minor == b"0"
        version = _V10 if http10 else _V11
        request = Request(method, target, headers, version)
        self._interpret(request, http10)
        self.request = request
        return request

    def _skip_empty_lines(self, buf: bytes, pos: int) -> int:
        for _ in range(_MAX_LEADING_EMPTY_LINES):
            if not buf.startswith(_CRLF, pos):
                return pos
            pos += 2
        if buf.startswith(_CRLF, pos):
            raise BadRequest("too many empty lines before the request line")
        return pos

    def _check_partial_head(self, acc: bytearray, start: int, stop: int) -> None:
        """Check an incomplete head: size limits, the request line, bare CR and LF."""
        limits = self.limits
        # Leading empty lines are allowed, a few; they are not part of the head.
        lead = 0
        while acc.startswith(_CRLF, lead) and lead < 2 * _MAX_LEADING_EMPTY_LINES:
            lead += 2
        if acc.startswith(_CRLF, lead):
            raise BadRequest("too many empty lines before the request line")
        if stop - lead > limits.max_head_size:
            raise HeadTooLarge(f"request head is over the limit of {limits.max_head_size} bytes")
        first_line_end = acc.find(_CRLF, lead, lead + limits.max_request_line + 2)
        if first_line_end < 0 and stop - lead > limits.max_request_line:
            raise RequestLineTooLong(
                f"request line is over the limit of {limits.max_request_line} bytes"
            )
        if first_line_end < 0 and stop - lead >= 16:
            # An HTTP/2 preface or garbage shows early: give the version error without waiting.
            if acc.startswith(b"PRI * HTTP/2.0", lead):
                raise UnsupportedVersion("HTTP/2 connection preface received on HTTP/1.1")
        _check_line_endings(acc, max(start, lead), stop)

    def _search_accumulated(self, terminator: bytes, check: _PartialCheck) -> bool:
        """Search new accumulated input for ``terminator``; on success make it the buffer."""
        acc = self.acc
        assert acc is not None
        n = len(acc)
        start = self.scan
        if acc.find(terminator, start) >= 0:
            self.materialize()
            return True
        check(acc, start, n)
        # Keep enough bytes behind to find a terminator that straddles two receives, and to
        # see the byte before a LF.
        self.scan = max(0, n - len(terminator) + 1)
        if self.eof:
            raise IncompleteMessage("connection closed in the middle of a request")
        return False

    # ---- interpretation of the head ------------------------------------------------------------

    def _interpret(self, request: Request, http10: bool) -> None:
        """Apply RFC 9112's framing and routing rules to a parsed head."""
        limits = self.limits
        method = request.method
        target = request.target
        host_count = 0
        content_length: bytes | None = None
        transfer_encoding: list[bytes] | None = None
        connection_close = False
        connection_keep_alive = False
        connection_upgrade = False
        expect_continue = False
        upgrade_field = False
        for name, value in request.headers:
            if name not in _FRAMING_FIELDS:
                continue
            if name == b"host":
                host_count += 1
                if host_count > 1:
                    # RFC 9112 3.2: respond 400 to "any request message that contains more than
                    # one Host header field line".
                    raise BadRequest("more than one Host field")
                if HOST.fullmatch(value) is None:
                    raise BadRequest("invalid Host field value")
            elif name == b"content-length":
                if content_length is not None:
                    # RFC 9110 8.6 lets a recipient accept repeated identical values; we take
                    # the stricter choice it also allows and reject the message.
                    raise InvalidFraming("more than one Content-Length field")
                if not value.isdigit():
                    raise InvalidFraming("Content-Length is not a non-negative decimal integer")
                if len(value) > 18:
                    raise InvalidFraming("Content-Length has too many digits")
                content_length = value
            elif name == b"transfer-encoding":
                if transfer_encoding is None:
                    transfer_encoding = []
                transfer_encoding.extend(c.strip(b" \t").lower() for c in value.split(b","))
            elif name == b"connection":
                for token in value.lower().split(b","):
                    token = token.strip(b" \t")
                    if token == b"close":
                        connection_close = True
                    elif token == b"keep-alive":
                        connection_keep_alive = True
                    elif token == b"upgrade":
                        connection_upgrade = True
            elif name == b"expect":
                # RFC 9110 10.1.1: an HTTP/1.0 request's 100-continue "MUST" be ignored.
                if value.lower() == b"100-continue" and not http10:
                    expect_continue = True
            else:  # upgrade
                upgrade_field = True

        # Host: RFC 9112 3.2, "A server MUST respond with a 400 (Bad Request) status code to any
        # HTTP/1.1 request message that lacks a Host header field".
        if host_count == 0 and not http10:
            raise BadRequest("HTTP/1.1 request without a Host field")

        # Request-target form: RFC 9112 3.2.
        first = target[0]
        if method == b"CONNECT":
            if AUTHORITY_FORM.fullmatch(target) is None:
                raise BadRequest("CONNECT needs an authority-form target (host:port)")
        elif first == 0x2F:  # "/": origin-form
            pass
        elif target == b"*":
            if method != b"OPTIONS":
                raise BadRequest("asterisk-form target is only allowed with OPTIONS")
        elif ABSOLUTE_FORM.fullmatch(target) is None:
            raise BadRequest("request target is not in origin-form or absolute-form")

        # Framing: RFC 9112 6.1 and 6.3.
        if transfer_encoding is not None:
            if http10:
                # RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding "MUST" be treated as
                # having faulty framing.
                raise InvalidFraming("Transfer-Encoding in an HTTP/1.0 request")
            if content_length is not None:
                # RFC 9112 6.1: a server MAY reject a message with both; we always do, since
                # this is the classic request-smuggling vector.
                raise InvalidFraming("both Transfer-Encoding and Content-Length")
            if not transfer_encoding or transfer_encoding[-1] != b"chunked":
                # RFC 9112 6.3 (4): chunked not final -> 400 and close.
                raise InvalidFraming("chunked is not the final transfer coding")
            if transfer_encoding.count(b"chunked") > 1:
                raise InvalidFraming("chunked applied more than once")
            if len(transfer_encoding) > 1:
                bad = b", ".join(transfer_encoding[:-1]).decode("latin-1")
                raise UnsupportedTransferCoding(f"transfer coding not implemented: {bad}")
            self.chunked = True
            self.phase = Phase.CHUNK_LINE
        else:
            length = int(content_length) if content_length is not None else 0
            max_body = limits.max_body_size
            if max_body is not None and length > max_body:
                raise ContentTooLarge(
                    f"Content-Length {length} is over the limit of {max_body} bytes"
                )
            self.remaining = length
            self.phase = Phase.FIXED

        self.http10 = http10
        self.close_requested = connection_close
        self.keep_alive_requested = (
            not connection_close if not http10 else connection_keep_alive and not connection_close
        )
        self.expect_continue = expect_continue
        self.upgrade = upgrade_field and connection_upgrade

    # ---- bodies --------------------------------------------------------------------------------

    def _read_fixed(self) -> Data | EndOfMessage | Signal:
        remaining = self.remaining
        if remaining == 0:
            self.phase = Phase.DONE
            return _EMPTY_EOM
        self.materialize()
        buf = self.buf
        pos = self.pos
        available = len(buf) - pos
        if available <= 0:
            if self.eof:
                raise IncompleteMessage(
                    f"connection closed with {remaining} bytes of the body missing"
                )
            return NEED_DATA
        if available <= remaining:
            data = buf[pos:] if pos else buf
            self.buf = b""
            self.pos = 0
            self.remaining = remaining - available
        else:
            data = buf[pos : pos + remaining]
            self.pos = pos + remaining
            self.remaining = 0
        self.received += len(data)
        return Data(data)

    def _read_chunked(self) -> Data | EndOfMessage | Signal:
        while True:
            phase = self.phase
            if phase is Phase.CHUNK_DATA:
                self.materialize()
                buf = self.buf
                pos = self.pos
                available = len(buf) - pos
                if available <= 0:
                    if self.eof:
                        raise IncompleteMessage("connection closed inside a chunk")
                    return NEED_DATA
                remaining = self.remaining
                if available <= remaining:
                    data = buf[pos:] if pos else buf
                    self.buf = b""
                    self.pos = 0
                    remaining -= available
                else:
                    data = buf[pos : pos + remaining]
                    self.pos = pos + remaining
                    remaining = 0
                self.remaining = remaining
                if remaining == 0:
                    self.phase = Phase.CHUNK_CRLF
                return Data(data)
            if phase is Phase.CHUNK_CRLF:
                self.materialize()
                buf = self.buf
                pos = self.pos
                if len(buf) - pos < 2:
                    if len(buf) - pos == 1 and buf[pos] != 0x0D:
                        raise InvalidFraming("chunk data is not followed by CRLF")
                    if self.eof:
                        raise IncompleteMessage("connection closed inside a chunk")
                    if len(buf) - pos == 1:
                        self._accumulate()
                    return NEED_DATA
                if buf[pos] != 0x0D or buf[pos + 1] != 0x0A:
                    raise InvalidFraming("chunk data is not followed by CRLF")
                self.pos = pos + 2
                self.phase = Phase.CHUNK_LINE
                continue
            if phase is Phase.CHUNK_LINE:
                if not self._read_chunk_line():
                    return NEED_DATA
                continue
            if phase is Phase.TRAILERS:
                return self._read_trailers()
            # Phase.DONE: nothing more in this request.
            return NEED_DATA  # pragma: no cover - the connection never asks

    def _max_chunk_line(self) -> int:
        return self.limits.max_chunk_size_digits + self.limits.max_chunk_extension

    def _check_partial_chunk_line(self, acc: bytearray, start: int, stop: int) -> None:
        if stop > self._max_chunk_line() + 1:
            raise InvalidFraming("chunk line is too long (size digits or extension over limit)")
        _check_line_endings(acc, start, stop)

    def _read_chunk_line(self) -> bool:
        if self.acc is not None:
            if not self._search_accumulated(_CRLF, self._check_partial_chunk_line):
                return False
        buf = self.buf
        pos = self.pos
        end = buf.find(_CRLF, pos)
        if end < 0:
            self._accumulate()
            acc = self.acc
            assert acc is not None
            self._check_partial_chunk_line(acc, 0, len(acc))
            self.scan = max(0, len(acc) - 1)
            if self.eof:
                raise IncompleteMessage("connection closed inside a chunk line")
            return False
        limits = self.limits
        digits_end = pos
        while digits_end < end and buf[digits_end] in HEXDIGITS:
            digits_end += 1
        n_digits = digits_end - pos
        if n_digits == 0:
            raise InvalidFraming("chunk size is missing or not hexadecimal")
        if n_digits > limits.max_chunk_size_digits:
            raise InvalidFraming(
                f"chunk size has more than {limits.max_chunk_size_digits} hex digits"
            )
        if digits_end != end:
            if end - digits_end > limits.max_chunk_extension:
                raise InvalidFraming(
                    f"chunk extension is over the limit of {limits.max_chunk_extension} bytes"
                )
            if CHUNK_EXT.fullmatch(buf, digits_end, end) is None:
                raise InvalidFraming("malformed chunk extension")
        size = int(buf[pos:digits_end], 16)
        self.pos = end + 2
        if size == 0:
            self.phase = Phase.TRAILERS
            return True
        received = self.received + size
        max_body = limits.max_body_size
        if max_body is not None and received > max_body:
            raise ContentTooLarge(f"chunked body is over the limit of {max_body} bytes")
        self.received = received
        self.remaining = size
        self.phase = Phase.CHUNK_DATA
        return True

    def _check_partial_trailers(self, acc: bytearray, start: int, stop: int) -> None:
        if stop > self.limits.max_trailer_size:
            raise HeadTooLarge(
                f"trailer section is over the limit of {self.limits.max_trailer_size} bytes"
            )
        _check_line_endings(acc, start, stop)

    def _read_trailers(self) -> EndOfMessage | Signal:
        if self.acc is not None:
            acc = self.acc
            # An empty trailer section is just CRLF; anything else ends with CRLF CRLF.
            if not acc.startswith(_CRLF) and not self._search_accumulated(
                _HEAD_TERMINATOR, self._check_partial_trailers
            ):
                return NEED_DATA
            self.materialize()
        buf = self.buf
        pos = self.pos
        if buf.startswith(_CRLF, pos):
            self.pos = pos + 2
            self.phase = Phase.DONE
            return _EMPTY_EOM
        end = buf.find(_HEAD_TERMINATOR, pos)
        if end < 0:
            trailer_acc = self._accumulate()
            self._check_partial_trailers(trailer_acc, 0, len(trailer_acc))
            self.scan = max(0, len(trailer_acc) - _HEAD_TERMINATOR_SCAN_BACK)
            if self.eof:
                raise IncompleteMessage("connection closed inside the trailer section")
            return NEED_DATA
        limits = self.limits
        if end + 4 - pos > limits.max_trailer_size:
            raise HeadTooLarge(
                f"trailer section is over the limit of {limits.max_trailer_size} bytes"
            )
        if FIELD_BLOCK.fullmatch(buf, pos, end + 2) is None:
            _diagnose_fields(buf, pos, end + 2, limits, what="trailer")
            raise BadRequest("malformed trailer field")  # pragma: no cover
        trailers = [(n.lower(), v) for n, v in FIELD_LINE.findall(buf, pos, end + 2)]
        if len(trailers) > limits.max_header_count:
            raise TooManyHeaders(f"more than {limits.max_header_count} trailer fields")
        if end + 2 - pos > limits.max_header_line:
            _check_field_line_lengths(buf, pos, end + 2, limits.max_header_line)
        self.pos = end + 4
        self.phase = Phase.DONE
        return EndOfMessage(trailers)


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


def _check_field_line_lengths(buf: bytes, start: int, stop: int, limit: int) -> None:
    for line in buf[start:stop].split(b"\r\n"):
        if len(line) > limit:
            raise HeaderLineTooLong(f"a field line is over the limit of {limit} bytes")


def _diagnose_head(buf: bytes, start: int, stop: int, limits: Limits) -> None:
    """Find out why a complete head failed the fast match, and raise the precise error."""
    line_end = buf.find(_CRLF, start, stop)
    line = buf[start:line_end]
    if len(line) > limits.max_request_line:
        raise RequestLineTooLong(
            f"request line is over the limit of {limits.max_request_line} bytes"
        )
    if line.startswith(b"PRI * HTTP/2.0"):
        raise UnsupportedVersion("HTTP/2 connection preface received on HTTP/1.1")
    m = REQUEST_LINE_ANY_VERSION.fullmatch(line)
    if m is None:
        _check_line_endings(buf, start, stop)
        version = line.rsplit(b" ", 1)[-1]
        if version.startswith(b"HTTP/") and b" " in line:
            raise BadRequest("malformed HTTP version in the request line")
        raise BadRequest("malformed request line")
    if m.group(3) != b"1" or m.group(4) not in (b"0", b"1"):
        raise UnsupportedVersion(
            f"HTTP/{m.group(3).decode()}.{m.group(4).decode()} is not supported"
        )
    _diagnose_fields(buf, line_end + 2, stop, limits, what="header")


def _diagnose_fields(buf: bytes, start: int, stop: int, limits: Limits, *, what: str) -> None:
    _check_line_endings(buf, start, stop)
    count = 0
    for line in buf[start:stop].split(b"\r\n")[:-1]:
        count += 1
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
