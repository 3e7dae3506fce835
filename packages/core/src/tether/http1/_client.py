"""The client side of one HTTP/1.1 connection.

The mirror of :class:`~tether.http1.ServerConnection`: request events in
(``send``), bytes out; bytes in (``receive_data``), response events out
(``next_event``); ``now`` in, deadlines out. Responses are framed by RFC 9112
6.3, rule by rule and in its order:

1. a response to HEAD, any 1xx, 204 and 304 end with their head;
2. a 2xx to CONNECT turns the connection into a tunnel (``trailing_data``);
3. Transfer-Encoding (only a lone final ``chunked`` is accepted; with
   Content-Length, or in HTTP/1.0, the framing is refused);
4. a single valid Content-Length;
5. otherwise the body runs until the server closes.

Requests may be pipelined: each request sent is queued, and its response
comes out in order. Bodies are read by the same readers as request bodies.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Final

from tether.errors import (
    ContentTooLarge,
    HeaderLineTooLong,
    HeadTooLarge,
    IncompleteMessage,
    InvalidFraming,
    LocalProtocolError,
    RemoteProtocolError,
    TooManyHeaders,
    UnsupportedTransferCoding,
    UnsupportedVersion,
)
from tether.http1._abnf import ABSOLUTE_FORM, AUTHORITY_FORM, REASON
from tether.http1._body import BodyReader
from tether.http1._events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Headers,
    InformationalResponse,
    Request,
    Response,
    Signal,
)
from tether.http1._head import _parse_fields
from tether.http1._send import fields_ok
from tether.http1._state import State, Timer
from tether.http1._tables import EMPTY_EOM, P_CHUNK_LINE, P_DONE, P_FIXED, P_UNTIL_CLOSE
from tether.limits import Limits

__all__ = ["ClientConnection", "InvalidResponse", "ResponseTimeout"]


class InvalidResponse(RemoteProtocolError):
    """The server sent something that is not a valid HTTP/1.1 response.

    ``status_hint`` is 502, what a gateway answers its own client with.
    """

    status_hint = 502


class ResponseTimeout(RemoteProtocolError):
    """The response head or body did not arrive in time (504 for a gateway)."""

    status_hint = 504


_DEFAULT_LIMITS = Limits()
_TERMINATOR = b"\r\n\r\n"
_OTHER_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]").fullmatch
_TCHARS = frozenset(
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


class _Body:
    """How the body of the response being read is delimited (internal)."""

    # Final: class constants (mypyc compiles plain class-body names as instance attributes).
    NONE: Final = "none"  # ends with the head
    LENGTH: Final = "length"  # Content-Length (the reader's FIXED phase)
    CHUNKED: Final = "chunked"
    CLOSE: Final = "close"  # until EOF


class ClientConnection:
    """One HTTP/1.1 connection, seen from the client.

    :meth:`send` a :class:`Request`, then its body as :class:`Data` and an
    :class:`EndOfMessage`; feed what the server sends to :meth:`receive_data`;
    take :class:`InformationalResponse`, :class:`Response`, :class:`Data` and
    :class:`EndOfMessage` from :meth:`next_event` until it returns
    :data:`NEED_DATA` (read more) or :data:`PAUSED` (no response is awaited,
    or the connection switched protocols: see :attr:`trailing_data`).
    While :attr:`keep_alive` is true another request may be sent, even before
    the previous responses have arrived (pipelining).
    """

    __slots__ = (
        "_body_wait_since",
        "_framing",
        "_framing_out",
        "_head_started",
        "_keep_alive",
        "_limits",
        "_now",
        "_our_state",
        "_pending",
        "_reader",
        "_remaining",
        "_scan",
        "_their_state",
        "_trailing",
        "request_count",
        "response_count",
    )

    def __init__(self, limits: Limits | None = None, *, now: float = 0.0) -> None:
        self._limits = limits if limits is not None else _DEFAULT_LIMITS
        # The body reader (shared with the server side) owns the receive buffer; heads are
        # read here.
        self._reader = BodyReader(self._limits)
        self._reader.phase = P_DONE
        self._our_state = State.IDLE
        self._their_state = State.IDLE
        self._keep_alive = True
        # Requests sent whose responses have not ended: (method, asked to upgrade, expect 100).
        self._pending: deque[tuple[bytes, bool, bool]] = deque()
        self._framing = _Body.NONE
        self._framing_out = _Body.LENGTH
        self._remaining = 0
        self._now = now
        self._head_started: float | None = None
        self._body_wait_since: float | None = None
        self._scan = 0
        self._trailing = b""
        #: Requests sent on this connection.
        self.request_count = 0
        #: Final responses received on this connection.
        self.response_count = 0

    # ---- properties ----------------------------------------------------------------------------

    @property
    def limits(self) -> Limits:
        """The limits this connection enforces on responses."""
        return self._limits

    @property
    def our_state(self) -> State:
        """Where our current request is (IDLE, SEND_BODY, DONE, MUST_CLOSE, ERROR)."""
        return self._our_state

    @property
    def their_state(self) -> State:
        """Where the response being read is (IDLE, SEND_BODY, CLOSED, SWITCHED_PROTOCOL, ERROR)."""
        return self._their_state

    @property
    def keep_alive(self) -> bool:
        """Whether another request may be sent on this connection."""
        return self._keep_alive

    @property
    def pending_responses(self) -> int:
        """Requests sent whose responses have not ended yet."""
        return len(self._pending)

    @property
    def trailing_data(self) -> bytes:
        """After a 101 or a 2xx to CONNECT: the bytes that followed the head.

        Bytes fed to :meth:`receive_data` after the switch are appended here.
        """
        return self._trailing

    @property
    def waiting_for_continue(self) -> bool:
        """Whether the request being answered asked for 100-continue and got no answer yet."""
        return bool(self._pending) and self._pending[0][2] and self._their_state is State.IDLE

    # ---- sending -------------------------------------------------------------------------------

    def send(self, event: Request | Data | EndOfMessage) -> bytes:
        """Return the bytes that carry ``event`` to the server.

        Raises :class:`LocalProtocolError` for an event illegal now: a request
        while the previous one's body is unfinished or after the connection
        stopped being reusable, invalid fields or target, a body its framing
        does not allow, trailers without chunked framing.
        """
        if type(event) is Request:
            return self._send_request(event)
        if type(event) is Data:
            return self._send_data(event.data)
        if type(event) is EndOfMessage:
            return self._send_end(event.trailers)
        raise LocalProtocolError(f"a client cannot send {event!r}")

    def _send_request(self, event: Request) -> bytes:
        if self._our_state not in (State.IDLE, State.DONE):
            raise LocalProtocolError(f"cannot send a request in state {self._our_state.value}")
        if not self._keep_alive:
            raise LocalProtocolError("the connection cannot carry another request")
        method, target, version = event.method, event.target, event.http_version
        if not method or not _TCHARS.issuperset(method):
            raise LocalProtocolError("the method is not a token")
        if not target or not target.isascii() or any(b <= 0x20 or b == 0x7F for b in target):
            raise LocalProtocolError("the request target must be visible US-ASCII")
        if method == b"CONNECT":
            if AUTHORITY_FORM.fullmatch(target) is None:
                raise LocalProtocolError("CONNECT needs an authority-form target (host:port)")
        elif not (
            target[0] == 0x2F
            or (target == b"*" and method == b"OPTIONS")
            or ABSOLUTE_FORM.fullmatch(target)
        ):
            raise LocalProtocolError("the target is not origin-, absolute- or asterisk-form")
        if version not in (b"1.1", b"1.0"):
            raise LocalProtocolError("http_version must be b'1.1' or b'1.0'")
        headers = list(event.headers)
        try:
            block = b"".join([b"%s: %s\r\n" % (name, value) for name, value in headers])
        except TypeError:
            raise LocalProtocolError("header names and values must be bytes") from None
        if not fields_ok(headers, block, len(headers)):
            raise LocalProtocolError(
                "invalid header field name or value (CR, LF, NUL, not a token)"
            )
        lowered = [(name.lower(), value) for name, value in headers]
        names = [name for name, _ in lowered]
        if version == b"1.1" and names.count(b"host") != 1:
            raise LocalProtocolError("an HTTP/1.1 request needs exactly one Host field")
        lengths = [value for name, value in lowered if name == b"content-length"]
        codings = [value for name, value in lowered if name == b"transfer-encoding"]
        if len(lengths) > 1 or (lengths and not (lengths[0].isdigit() and len(lengths[0]) <= 18)):
            raise LocalProtocolError("one Content-Length of decimal digits is allowed")
        if codings and (len(codings) > 1 or codings[0].strip(b" \t").lower() != b"chunked"):
            raise LocalProtocolError("only Transfer-Encoding: chunked can be sent")
        if codings and (lengths or version == b"1.0"):
            raise LocalProtocolError("chunked with Content-Length, or in HTTP/1.0")
        tokens: set[bytes] = set()
        for name, value in lowered:
            if name == b"connection":
                tokens.update(t.strip(b" \t") for t in value.lower().split(b","))
        expect = any(n == b"expect" and v.lower() == b"100-continue" for n, v in lowered)
        upgrade = b"upgrade" in tokens and b"upgrade" in names
        if b"close" in tokens or (version == b"1.0" and b"keep-alive" not in tokens):
            self._keep_alive = False
        if codings:
            self._framing_out = _Body.CHUNKED
        else:
            self._framing_out = _Body.LENGTH
            self._remaining = int(lengths[0]) if lengths else 0
        self._pending.append((method, upgrade, expect and version == b"1.1"))
        self._our_state = State.SEND_BODY
        self.request_count += 1
        return b"%s %s HTTP/%s\r\n%s\r\n" % (method, target, version, block)

    def _send_data(self, data: bytes) -> bytes:
        if self._our_state is not State.SEND_BODY:
            raise LocalProtocolError(f"cannot send body data in state {self._our_state.value}")
        if self._framing_out == _Body.CHUNKED:
            return b"%x\r\n%s\r\n" % (len(data), data) if data else b""
        if len(data) > self._remaining:
            raise LocalProtocolError(
                "body is longer than the Content-Length sent (no Content-Length means no body)"
            )
        self._remaining -= len(data)
        return data

    def _send_end(self, trailers: Headers) -> bytes:
        if self._our_state is not State.SEND_BODY:
            raise LocalProtocolError(f"cannot end a request in state {self._our_state.value}")
        out = b""
        if self._framing_out == _Body.CHUNKED:
            block = b"".join([b"%s: %s\r\n" % (name, value) for name, value in trailers])
            if trailers and not fields_ok(trailers, block, len(trailers)):
                raise LocalProtocolError("invalid trailer field name or value")
            out = b"0\r\n%s\r\n" % block
        elif trailers:
            raise LocalProtocolError("trailers need a chunked request")
        elif self._remaining:
            raise LocalProtocolError(
                f"body is {self._remaining} bytes shorter than the Content-Length sent"
            )
        self._our_state = State.DONE if self._keep_alive else State.MUST_CLOSE
        return out

    # ---- receiving -----------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float | None = None) -> None:
        """Add bytes received from the server; ``b""`` means it closed its side."""
        if now is not None:
            self._now = now
        reader = self._reader
        if not data:
            reader.eof = True
            return
        if reader.eof:
            raise LocalProtocolError("data received after EOF")
        if self._their_state is State.SWITCHED_PROTOCOL:
            # The bytes belong to the tunnel or the new protocol: keep them there, in order.
            self._trailing += data
            return
        held = reader.buffered()
        if held > self._limits.max_buffered_bytes:
            raise LocalProtocolError(
                f"{held} bytes buffered without next_event() draining them "
                f"(Limits.max_buffered_bytes is {self._limits.max_buffered_bytes})"
            )
        self._body_wait_since = None
        if self._their_state is State.IDLE and self._head_started is None:
            self._head_started = self._now
        reader.feed(data)

    def next_event(
        self, now: float | None = None
    ) -> InformationalResponse | Response | Data | EndOfMessage | ConnectionClosed | Signal:
        """Return the next event, :data:`NEED_DATA` or :data:`PAUSED`.

        Raises :class:`InvalidResponse` (or another :class:`RemoteProtocolError`
        subclass: ``InvalidFraming``, ``IncompleteMessage``, ``ContentTooLarge``,
        ``HeaderLineTooLong``, ...) when the server breaks the protocol or a
        limit; the connection is then unusable: close it.
        """
        if now is not None:
            self._now = now
        state = self._their_state
        if state in (State.SWITCHED_PROTOCOL, State.ERROR, State.CLOSED):
            return PAUSED if state is not State.CLOSED else ConnectionClosed()
        try:
            if state is State.IDLE:
                return self._next_head()
            return self._next_body()
        except RemoteProtocolError:
            self._their_state = State.ERROR
            self._our_state = State.ERROR
            self._keep_alive = False
            raise

    def _next_head(self) -> InformationalResponse | Response | ConnectionClosed | Signal:
        reader = self._reader
        if not self._pending:
            if reader.buffered():
                raise InvalidResponse("the server sent bytes when no response was awaited")
            if reader.eof:
                self._their_state = State.CLOSED
                self._keep_alive = False
                return ConnectionClosed()
            return PAUSED
        acc = reader.acc
        if acc is not None:
            # Partial input accumulates; search only the bytes not searched before.
            if acc.find(_TERMINATOR, self._scan) < 0:
                return self._partial_head(acc, 0)
            reader.materialize()
        buf, pos = reader.buf, reader.pos
        end = buf.find(_TERMINATOR, pos)
        if end < 0:
            if pos < len(buf):
                reader._accumulate()
                self._scan = 0
            return self._partial_head(buf, pos)
        self._scan = 0
        reader.pos = end + 4
        self._head_started = None
        return self._interpret(buf[pos:end])

    def _partial_head(self, buf: bytes | bytearray, pos: int) -> Signal:
        """Check an incomplete head (sizes, the version prefix, bare CR or LF) and wait for more."""
        limits = self._limits
        size = len(buf) - pos
        if size > limits.max_head_size:
            raise HeadTooLarge(f"response head is over the limit of {limits.max_head_size} bytes")
        if buf.find(b"\r\n", pos) < 0 and size > limits.max_request_line + 1:
            raise InvalidResponse(f"status line is over the limit of {limits.max_request_line}")
        n = min(size, 5)
        if buf[pos : pos + n] != b"HTTP/"[:n]:
            raise InvalidResponse(f"not an HTTP response: {bytes(buf[pos : pos + 16])!r}")
        version = bytes(buf[pos : pos + 8])
        if size >= 8 and version not in (b"HTTP/1.1", b"HTTP/1.0"):
            if _OTHER_VERSION(version):
                raise UnsupportedVersion(f"{version.decode()} responses are not supported")
            raise InvalidResponse(f"malformed HTTP version: {version!r}")
        _check_line_endings(buf, pos + max(0, self._scan - 1), len(buf))
        self._scan = max(0, size - 3)
        if self._reader.eof:
            if size == 0:
                raise IncompleteMessage("the server closed the connection before responding")
            raise IncompleteMessage("the server closed the connection inside a response head")
        return NEED_DATA

    def _interpret(self, head: bytes) -> InformationalResponse | Response:
        limits = self._limits
        if len(head) + 4 > limits.max_head_size:
            raise HeadTooLarge(f"response head is over the limit of {limits.max_head_size} bytes")
        _check_line_endings(head, 0, len(head))
        line, _, block = head.partition(b"\r\n")
        if len(line) > limits.max_request_line:
            raise InvalidResponse(f"status line is over the limit of {limits.max_request_line}")
        # RFC 9112 4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
        version, sp1, rest = line.partition(b" ")
        code, _, reason = rest.partition(b" ")
        if version not in (b"HTTP/1.1", b"HTTP/1.0"):
            if _OTHER_VERSION(version):
                raise UnsupportedVersion(f"{version.decode()} responses are not supported")
            raise InvalidResponse(f"malformed status line: {line[:64]!r}")
        # A missing SP before an empty reason is taken (as h11 and browsers do): the status line
        # carries no framing, so the leniency cannot desynchronise anything.
        if not sp1 or len(code) != 3 or not code.isdigit():
            raise InvalidResponse(f"malformed status line: {line[:64]!r}")
        if REASON.fullmatch(reason) is None:
            raise InvalidResponse("control character in the reason phrase")
        status = int(code)
        if not 100 <= status <= 599:
            raise InvalidResponse(f"status code {status} is outside 100-599")
        lines = block.split(b"\r\n") if block else []
        if len(lines) > limits.max_header_count:
            raise TooManyHeaders(f"more than {limits.max_header_count} response fields")
        if lines and max(map(len, lines)) > limits.max_header_line:
            raise HeaderLineTooLong(f"a response field line is over {limits.max_header_line} bytes")
        headers = _parse_fields(lines) if lines else []
        if headers is None:
            raise InvalidResponse(_diagnose_fields(lines))
        http10 = version == b"HTTP/1.0"
        method, upgrade, _ = self._pending[0]
        if status < 200:
            if status == 101:
                if not upgrade or http10:
                    raise InvalidResponse("101 Switching Protocols to a request that did not ask")
                self._switch()
            elif http10:
                raise InvalidResponse("a 1xx response in HTTP/1.0")
            else:
                self._pending[0] = (method, upgrade, False)
            return InformationalResponse(status, headers, reason)
        return self._final(status, headers, reason, http10, method)

    def _final(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        reason: bytes,
        http10: bool,
        method: bytes,
    ) -> Response:
        lengths: list[bytes] = []
        codings: list[bytes] = []
        tokens: set[bytes] = set()
        for name, value in headers:
            if name == b"content-length":
                lengths.append(value)
            elif name == b"transfer-encoding":
                codings.extend(c.strip(b" \t").lower() for c in value.split(b","))
            elif name == b"connection":
                tokens.update(t.strip(b" \t") for t in value.lower().split(b","))
        self.response_count += 1
        if b"close" in tokens or (http10 and b"keep-alive" not in tokens):
            self._keep_alive = False
        reader = self._reader
        event = Response(status, headers, reason)
        # RFC 9112 6.3, in order. (1) HEAD, 1xx (handled before), 204 and 304: no body.
        if method == b"HEAD" or status in (204, 304):
            self._begin_body(_Body.NONE)
            return event
        # (2) A 2xx to CONNECT: the connection is a tunnel from the byte after the head.
        if method == b"CONNECT" and 200 <= status < 300:
            self._switch()
            return event
        # (3) Transfer-Encoding.
        if codings:
            if http10:
                raise InvalidFraming("Transfer-Encoding in an HTTP/1.0 response (RFC 9112 6.1)")
            if lengths:
                # RFC 9112 6.3 (3): "ought to be handled as an error" (smuggling, splitting).
                raise InvalidFraming("both Transfer-Encoding and Content-Length in a response")
            if codings != [b"chunked"]:
                if codings[-1] == b"chunked" and codings.count(b"chunked") == 1:
                    bad = b", ".join(codings[:-1]).decode("latin-1")
                    raise UnsupportedTransferCoding(f"transfer coding not implemented: {bad}")
                # RFC 9112 6.3 (4) would read until close; the body could not be decoded anyway.
                raise InvalidFraming("chunked is not the final transfer coding (once)")
            reader.phase = P_CHUNK_LINE
            reader.received = 0
            self._begin_body(_Body.CHUNKED)
            return event
        # (5) Content-Length: one plain decimal (repeated values, even equal, are refused).
        if lengths:
            value = lengths[0]
            if len(lengths) > 1:
                raise InvalidFraming("more than one Content-Length in a response")
            if not value.isdigit() or len(value) > 18:
                raise InvalidFraming(f"invalid Content-Length {value[:32]!r}")
            length = int(value)
            max_body = self._limits.max_body_size
            if max_body is not None and length > max_body:
                raise ContentTooLarge(f"Content-Length {length} is over the limit of {max_body}")
            reader.phase = P_FIXED
            reader.remaining = length
            reader.received = 0
            self._begin_body(_Body.LENGTH)
            return event
        # (8) Otherwise the body runs until the server closes the connection.
        self._keep_alive = False
        reader.phase = P_UNTIL_CLOSE
        reader.received = 0
        self._begin_body(_Body.CLOSE)
        return event

    def _switch(self) -> None:
        self._their_state = State.SWITCHED_PROTOCOL
        self._keep_alive = False
        self._pending.popleft()
        self._trailing = self._reader.take_remaining()

    def _begin_body(self, framing: str) -> None:
        self._framing = framing
        self._their_state = State.SEND_BODY

    def _next_body(self) -> Data | EndOfMessage | Signal:
        reader = self._reader
        framing = self._framing
        event: Data | EndOfMessage | Signal
        if framing == _Body.NONE:
            event = EMPTY_EOM
        elif framing == _Body.CLOSE:
            event = reader.read_until_close()
        elif framing == _Body.LENGTH:
            event = reader.read_fixed()
        else:
            whole = None
            if reader.received == 0 and reader.acc is None and reader.phase is P_CHUNK_LINE:
                whole = reader.read_whole_chunked()
            event = whole if whole is not None else reader.read_chunked()
        if event is NEED_DATA:
            if self._body_wait_since is None:
                self._body_wait_since = self._now
            return NEED_DATA
        if isinstance(event, EndOfMessage):
            self._end_response()
        elif framing == _Body.CHUNKED and reader.phase is P_FIXED:
            # read_whole_chunked took the whole body: the end comes next.
            reader.phase = P_DONE
            self._framing = _Body.NONE
        return event

    def _end_response(self) -> None:
        reader = self._reader
        reader.phase = P_DONE
        self._body_wait_since = None
        self._pending.popleft()
        self._their_state = State.IDLE
        if self._pending == deque() and self._our_state is State.SEND_BODY:
            # The server answered before our body ended; where the next message would start
            # is unknowable to both sides, so this connection carries no more.
            self._keep_alive = False
        if not self._keep_alive:
            if self._our_state is State.DONE:
                self._our_state = State.MUST_CLOSE
            self._pending.clear()
        if reader.buffered() == 0:
            self._head_started = None
        else:
            self._head_started = self._now

    # ---- time ----------------------------------------------------------------------------------

    def next_deadline(self) -> tuple[float, Timer] | None:
        """The next absolute deadline and what it means, or ``None``.

        ``Timer.HEAD``: a response head has started and must complete within
        ``Limits.head_timeout``. ``Timer.BODY``: the core is waiting for body
        bytes, for at most ``Limits.body_timeout``.
        """
        if self._their_state is State.IDLE and self._head_started is not None and self._pending:
            return (self._head_started + self._limits.head_timeout, Timer.HEAD)
        if self._their_state is State.SEND_BODY and self._body_wait_since is not None:
            return (self._body_wait_since + self._limits.body_timeout, Timer.BODY)
        return None

    def handle_timeout(self, now: float) -> None:
        """Raise :class:`ResponseTimeout` if a deadline has passed at ``now``."""
        self._now = now
        deadline = self.next_deadline()
        if deadline is None or now < deadline[0]:
            return
        self._their_state = State.ERROR
        self._our_state = State.ERROR
        self._keep_alive = False
        what = "head" if deadline[1] is Timer.HEAD else "body"
        raise ResponseTimeout(f"the response {what} did not arrive in time")


def _check_line_endings(buf: bytes | bytearray, start: int, stop: int) -> None:
    """Refuse a bare LF, or a CR not followed by LF (RFC 9112 2.2: we do not take the MAY)."""
    i = buf.find(b"\n", start, stop)
    while i >= 0:
        if i == 0 or buf[i - 1] != 0x0D:
            raise InvalidResponse("bare LF in the response head: lines must end with CRLF")
        i = buf.find(b"\n", i + 1, stop)
    i = buf.find(b"\r", start, stop)
    while i >= 0:
        if i + 1 < len(buf) and buf[i + 1] != 0x0A:
            raise InvalidResponse("bare CR in the response head")
        i = buf.find(b"\r", i + 1, stop)


def _diagnose_fields(lines: list[bytes]) -> str:
    """Why a response's field lines failed the checks, for the error message."""
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            return "obsolete line folding in a response field (RFC 9112 5.2)"
        name, colon, _ = line.partition(b":")
        if not colon:
            return "response field line without a colon"
        if name[-1:] in (b" ", b"\t"):
            return "whitespace between a response field name and the colon (RFC 9112 5.1)"
        if not name or not _TCHARS.issuperset(name):
            return "invalid character in a response field name"
    return "invalid character in a response field value"
