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

from collections import deque
from typing import Final

from tether.errors import (
    ContentTooLarge,
    InvalidFraming,
    LocalProtocolError,
    RemoteProtocolError,
    ShortBody,
    UnsupportedTransferCoding,
)
from tether.http1._abnf import ABSOLUTE_FORM, AUTHORITY_FORM
from tether.http1._body import BodyReader
from tether.http1._common import ConnectionBase, chunk, last_chunk
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
from tether.http1._response import (
    InvalidResponse,
    ResponseTimeout,
    check_partial_head,
    parse_response_head,
)
from tether.http1._send import fields_ok
from tether.http1._state import HTTPState, HTTPTimer
from tether.http1._tables import EMPTY_EOM, P_CHUNK_LINE, P_DONE, P_FIXED, P_UNTIL_CLOSE
from tether.limits import Limits

__all__ = ["ClientConnection", "InvalidResponse", "ResponseTimeout"]


_DEFAULT_LIMITS = Limits()
_TERMINATOR = b"\r\n\r\n"
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


class ClientConnection(ConnectionBase):
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
        "_framing",
        "_framing_out",
        "_pending",
        "_reader",
        "_remaining",
        "_scan",
        "request_count",
        "response_count",
    )

    def __init__(self, limits: Limits | None = None, *, now: float | None = None) -> None:
        """A connection enforcing ``limits`` (default: ``Limits()``), opened at time ``now``.

        As for :class:`~tether.http1.ServerConnection`, ``now`` is a reading of one
        monotonic clock, and without one there are no deadlines: a timer that would
        start without a clock starts at the first call that passes ``now``.
        """
        super().__init__(limits if limits is not None else _DEFAULT_LIMITS, now)
        # The body reader (shared with the server side) owns the receive buffer; heads are
        # read here.
        self._reader = BodyReader(self._limits)
        self._reader.phase = P_DONE
        # Requests sent whose responses have not ended: (method, asked to upgrade, expect 100).
        self._pending: deque[tuple[bytes, bool, bool]] = deque()
        self._framing = _Body.NONE
        self._framing_out = _Body.LENGTH
        self._remaining = 0
        self._scan = 0
        #: Requests sent on this connection.
        self.request_count = 0
        #: Final responses received on this connection.
        self.response_count = 0

    # ---- properties ----------------------------------------------------------------------------

    @property
    def pending_responses(self) -> int:
        """Requests sent whose responses have not ended yet."""
        return len(self._pending)

    @property
    def waiting_for_continue(self) -> bool:
        """Whether the request being answered asked for 100-continue and got no answer yet."""
        return bool(self._pending) and self._pending[0][2] and self._their_state is HTTPState.IDLE

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
        if self._our_state not in (HTTPState.IDLE, HTTPState.DONE):
            raise LocalProtocolError(f"cannot send a request in state {self._our_state.value}")
        if not self._keep_alive:
            raise LocalProtocolError("the connection cannot carry another request")
        method, target, version = event.method, event.target, event.http_version
        if not method or not _TCHARS.issuperset(method):
            raise LocalProtocolError("the method is not a token")
        if not target or not target.isascii() or any(b <= 0x20 or b == 0x7F for b in target):
            raise LocalProtocolError("the request target must be visible US-ASCII")
        if 0x23 in target:
            # RFC 9110 4.2.5: the fragment is the client's own; it is never sent.
            raise LocalProtocolError("the request target has a fragment ('#'): strip it")
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
        self._our_state = HTTPState.SEND_BODY
        self.request_count += 1
        return b"%s %s HTTP/%s\r\n%s\r\n" % (method, target, version, block)

    def _send_data(self, data: bytes) -> bytes:
        if self._our_state is not HTTPState.SEND_BODY:
            raise LocalProtocolError(f"cannot send body data in state {self._our_state.value}")
        if self._framing_out == _Body.CHUNKED:
            return chunk(data)
        if len(data) > self._remaining:
            raise LocalProtocolError(
                "body is longer than the Content-Length sent (no Content-Length means no body)"
            )
        self._remaining -= len(data)
        return data

    def _send_end(self, trailers: Headers) -> bytes:
        if self._our_state is not HTTPState.SEND_BODY:
            raise LocalProtocolError(f"cannot end a request in state {self._our_state.value}")
        out = b""
        if self._framing_out == _Body.CHUNKED:
            out = last_chunk(trailers)
        elif trailers:
            raise LocalProtocolError("trailers need a chunked request")
        elif self._remaining:
            raise ShortBody(f"body is {self._remaining} bytes shorter than the Content-Length sent")
        self._our_state = HTTPState.DONE if self._keep_alive else HTTPState.MUST_CLOSE
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
        if self._their_state is HTTPState.SWITCHED_PROTOCOL:
            # The bytes belong to the tunnel or the new protocol: keep them there, in order.
            self._trailing += data
            return
        self._body_wait_since = None
        if self._their_state is HTTPState.IDLE and self._head_started is None:
            self._head_started = self._now
        self._hold(reader, data)

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
        if state in (HTTPState.SWITCHED_PROTOCOL, HTTPState.ERROR, HTTPState.CLOSED):
            return PAUSED if state is not HTTPState.CLOSED else ConnectionClosed()
        try:
            if state is HTTPState.IDLE:
                return self._next_head()
            return self._next_body()
        except RemoteProtocolError:
            self._their_state = HTTPState.ERROR
            self._our_state = HTTPState.ERROR
            self._keep_alive = False
            raise

    def _next_head(self) -> InformationalResponse | Response | ConnectionClosed | Signal:
        reader = self._reader
        if not self._pending:
            if reader.buffered():
                raise InvalidResponse("the server sent bytes when no response was awaited")
            if reader.eof:
                self._their_state = HTTPState.CLOSED
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
        """Check an incomplete head (sizes, the version prefix, bare CR or LF); wait for more."""
        self._scan = check_partial_head(buf, pos, self._scan, self._limits, self._reader.eof)
        return NEED_DATA

    def _interpret(self, head: bytes) -> InformationalResponse | Response:
        version, status, reason, headers = parse_response_head(head, self._limits)
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
        self._their_state = HTTPState.SWITCHED_PROTOCOL
        self._keep_alive = False
        self._pending.popleft()
        self._trailing = self._reader.take_remaining()

    def _begin_body(self, framing: str) -> None:
        self._framing = framing
        self._their_state = HTTPState.SEND_BODY

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
        self._their_state = HTTPState.IDLE
        if self._pending == deque() and self._our_state is HTTPState.SEND_BODY:
            # The server answered before our body ended; where the next message would start
            # is unknowable to both sides, so this connection carries no more.
            self._keep_alive = False
        if not self._keep_alive:
            if self._our_state is HTTPState.DONE:
                self._our_state = HTTPState.MUST_CLOSE
            self._pending.clear()
        if reader.buffered() == 0:
            self._head_started = None
        else:
            self._head_started = self._now

    # ---- time ----------------------------------------------------------------------------------

    def next_deadline(self) -> tuple[float, HTTPTimer] | None:
        """The next absolute deadline and what it means, or ``None``.

        ``HTTPTimer.HEAD``: a response head has started and must complete within
        ``Limits.head_timeout``. ``HTTPTimer.BODY``: the core is waiting for body
        bytes, for at most ``Limits.body_timeout``.
        """
        if self._their_state is HTTPState.IDLE and self._head_started is not None and self._pending:
            return (self._head_started + self._limits.head_timeout, HTTPTimer.HEAD)
        if self._their_state is HTTPState.SEND_BODY and self._body_wait_since is not None:
            return (self._body_wait_since + self._limits.body_timeout, HTTPTimer.BODY)
        return None

    def handle_timeout(self, now: float) -> None:
        """Raise :class:`ResponseTimeout` if a deadline has passed at ``now``."""
        self._now = now
        if (
            self._head_started is None
            and self._their_state is HTTPState.IDLE
            and self._reader.buffered()
        ):
            # A response head began before any call passed a clock: its timer starts now.
            self._head_started = now
        deadline = self.next_deadline()
        if deadline is None or now < deadline[0]:
            return
        self._their_state = HTTPState.ERROR
        self._our_state = HTTPState.ERROR
        self._keep_alive = False
        what = "head" if deadline[1] is HTTPTimer.HEAD else "body"
        raise ResponseTimeout(f"the response {what} did not arrive in time")
