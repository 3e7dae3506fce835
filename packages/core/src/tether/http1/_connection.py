"""The server side of one HTTP/1.1 connection.

Bytes in (``receive_data``), events out (``next_event``); response events in
(``send``), bytes out. Time comes in as ``now`` and goes out as a deadline
(``next_deadline``, ``handle_timeout``). Nothing here reads a clock or touches
a socket, so the same object drives an asyncio server, a threaded server, and
a test feeding it by hand.
"""

from __future__ import annotations

from tether.errors import LocalProtocolError, ProtocolError, RemoteProtocolError, RequestTimeout
from tether.http1._events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Headers,
    InformationalResponse,
    ReceiveEvent,
    Response,
    SendEvent,
    Signal,
)
from tether.http1._receive import RequestReader
from tether.http1._send import (
    OWNED,
    Framing,
    fields_ok,
    status_line,
    write_informational,
    write_response,
)
from tether.http1._state import OUR_TRANSITIONS, THEIR_TRANSITIONS, State, Timer, _Move, column
from tether.http1._tables import EMPTY_EOM, P_CHUNK_LINE, P_DONE, P_FIXED, P_HEAD
from tether.limits import Limits

_DEFAULT_LIMITS = Limits()
_CONNECTION_CLOSED = ConnectionClosed()
_LAST_CHUNK = b"0\r\n\r\n"
_HEAD = P_HEAD
_FIXED = P_FIXED
_CHUNK_LINE = P_CHUNK_LINE
_DONE = P_DONE
_IDLE = State.IDLE
_CLOSED = State.CLOSED
_ERROR = State.ERROR
_SEND_BODY = State.SEND_BODY
_DONE_STATE = State.DONE
_SEND_RESPONSE = State.SEND_RESPONSE
_MUST_CLOSE = State.MUST_CLOSE
_SWITCHED = State.SWITCHED_PROTOCOL
_LENGTH = Framing.LENGTH
_CHUNKED = Framing.CHUNKED
_CLOSE = Framing.CLOSE
_DROP = Framing.DROP
_NONE = Framing.NONE
_M_BODY_DONE = _Move.BODY_DONE
_M_CLOSE = _Move.CLOSE
_M_INFORMATIONAL = _Move.INFORMATIONAL
_M_NEXT_CYCLE = _Move.NEXT_CYCLE
_M_RESPONSE = _Move.RESPONSE
_M_RESPONSE_DONE = _Move.RESPONSE_DONE
_M_SWITCH = _Move.SWITCH
_M_REQUEST = _Move.REQUEST
_M_NO_REUSE = _Move.NO_REUSE
_M_DRAIN = _Move.DRAIN
_M_FAIL = _Move.FAIL
# Every write of _their_state or _our_state below is a look-up in these tables (a test checks
# this over the spec vectors and Hypothesis streams).
_THEIRS = THEIR_TRANSITIONS
_OURS = OUR_TRANSITIONS
# The columns of the moves every request makes, for a look-up without building a tuple.
_THEIRS_ON_REQUEST = column(THEIR_TRANSITIONS, _Move.REQUEST)
_THEIRS_ON_BODY_DONE = column(THEIR_TRANSITIONS, _Move.BODY_DONE)
_THEIRS_ON_NEXT_CYCLE = column(THEIR_TRANSITIONS, _Move.NEXT_CYCLE)
_OURS_ON_REQUEST = column(OUR_TRANSITIONS, _Move.REQUEST)
_OURS_ON_RESPONSE = column(OUR_TRANSITIONS, _Move.RESPONSE)
_OURS_ON_RESPONSE_DONE = column(OUR_TRANSITIONS, _Move.RESPONSE_DONE)
_OURS_ON_NEXT_CYCLE = column(OUR_TRANSITIONS, _Move.NEXT_CYCLE)


class ServerConnection:
    """One HTTP/1.1 connection, seen from the server.

    Feed received bytes to :meth:`receive_data`, take events from
    :meth:`next_event` until it returns :data:`NEED_DATA` or :data:`PAUSED`,
    answer each request with :meth:`send`, and call :meth:`start_next_cycle`
    once the response is complete and :attr:`keep_alive` is true.

    Pull-style I/O (a blocking socket): read the socket only after
    ``NEED_DATA``. Push-style I/O (asyncio's ``data_received``), where bytes
    arrive whether or not the core asked: after each ``receive_data`` and
    ``next_event`` loop, pause reading while :attr:`wants_data` is false (a
    pipelined request waits behind a response, or ``Limits.max_buffered_bytes``
    is held), and after :meth:`start_next_cycle` call :meth:`next_event` again
    at once (pipelined requests may already be buffered: no new bytes will
    arrive to prompt you), then resume reading when :attr:`wants_data` is true.

    Deadlines: keep one timer per connection and re-read :meth:`next_deadline`
    after every ``receive_data``, ``next_event``, ``send`` and
    ``start_next_cycle``; on expiry call :meth:`handle_timeout`.
    """

    __slots__ = (
        "_body_bytes",
        "_body_started",
        "_body_wait_since",
        "_discarding",
        "_expects_continue",
        "_framing",
        "_head_started",
        "_idle_since",
        "_keep_alive",
        "_limits",
        "_now",
        "_our_state",
        "_reader",
        "_remaining",
        "_request_count",
        "_their_state",
        "_trailing",
    )

    def __init__(self, limits: Limits | None = None, *, now: float | None = None) -> None:
        """A connection enforcing ``limits`` (default: ``Limits()``), opened at time ``now``.

        ``now`` and every later ``now`` argument are readings of one monotonic clock in
        seconds (``time.monotonic()``, ``loop.time()``), never wall-clock time (that is
        for :func:`~tether.http1.date_header`). Without a clock there are no deadlines:
        :meth:`next_deadline` returns ``None`` until a call passes ``now``, and the
        idle timer of a connection opened without one starts at that first ``now``.
        """
        self._limits = limits if limits is not None else _DEFAULT_LIMITS
        self._reader = RequestReader(self._limits)
        self._their_state = _IDLE
        self._our_state = _IDLE
        self._keep_alive = True
        self._framing = _NONE
        self._remaining = 0
        self._discarding = False
        self._trailing = b""
        self._now = now
        # Timers: when the connection went idle (None: no clock given yet), when the current
        # head began, when the core started waiting for body bytes (None: not waiting).
        self._idle_since = now
        self._head_started: float | None = None
        self._body_wait_since: float | None = None
        # For Limits.min_body_rate: when the current request's body began (None: no body
        # being read), and the bytes received since.
        self._body_started: float | None = None
        self._body_bytes = 0
        self._expects_continue = False
        self._request_count = 0

    # ---- properties ----------------------------------------------------------------------------

    @property
    def limits(self) -> Limits:
        """The limits this connection enforces."""
        return self._limits

    @property
    def our_state(self) -> State:
        """Where our response is in the current cycle."""
        return self._our_state

    @property
    def their_state(self) -> State:
        """Where the peer's request is in the current cycle."""
        return self._their_state

    @property
    def wants_data(self) -> bool:
        """Whether a push-style caller should keep reading the socket.

        False once the peer sent EOF, while the current request is complete and
        its response pending (``next_event`` gives ``PAUSED``), or while
        ``Limits.max_buffered_bytes`` or more are held unread. While it is true,
        :meth:`receive_data` accepts the next chunk without raising.
        """
        reader = self._reader
        if reader.eof or reader.buffered() >= self._limits.max_buffered_bytes:
            return False
        # The request is complete: nothing more is read until start_next_cycle.
        return reader.phase is not P_DONE and self._their_state is not _ERROR

    @property
    def expects_continue(self) -> bool:
        """Whether the request asked for ``100-continue`` and no 100 or final response went out.

        Send ``InformationalResponse(100)`` when the application first reads the
        body (or a final response at once to refuse it; the connection then closes
        unless the body was already complete).
        """
        return self._expects_continue

    @property
    def request_count(self) -> int:
        """Requests started on this connection (heads read, refused ones excluded)."""
        return self._request_count

    @property
    def keep_alive(self) -> bool:
        """Whether the connection may carry another request after the current response."""
        return self._keep_alive

    @property
    def response_started(self) -> bool:
        """Whether a final response head has been sent for the current request."""
        return self._our_state in (_SEND_BODY, _DONE_STATE, _MUST_CLOSE)

    @property
    def trailing_data(self) -> bytes:
        """After a 101: the bytes that followed the request, for the new protocol."""
        return self._trailing

    @property
    def buffered_bytes(self) -> int:
        """Received bytes not yet turned into events."""
        return self._reader.buffered()

    @property
    def peer_closed(self) -> bool:
        """Whether the peer has sent EOF (``receive_data(b"")``)."""
        return self._reader.eof

    # ---- receiving -----------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float | None = None) -> None:
        """Add bytes received from the peer; ``b""`` means the peer closed its side.

        Raises :class:`LocalProtocolError` if more bytes are fed after EOF, or if
        more than ``Limits.max_buffered_bytes`` are held without being drained by
        :meth:`next_event` (read the socket only after ``NEED_DATA``).
        """
        if now is not None:
            self._now = now
            if self._idle_since is None:
                self._idle_since = now
        reader = self._reader
        if not data:
            reader.eof = True
            return
        if reader.eof:
            raise LocalProtocolError("data received after EOF")
        self._body_wait_since = None
        if self._body_started is not None:
            self._body_bytes += len(data)
        if reader.acc is None and reader.pos >= len(reader.buf):
            # Nothing buffered (the common case): the new bytes become the buffer.
            reader.buf = data
            reader.pos = 0
            if reader.phase is _HEAD and self._head_started is None:
                self._head_started = self._now
            return
        held = reader.buffered()
        if held > self._limits.max_buffered_bytes:
            raise LocalProtocolError(
                f"{held} bytes buffered without next_event() draining them "
                f"(Limits.max_buffered_bytes is {self._limits.max_buffered_bytes})"
            )
        if held == 0 and reader.phase is _HEAD and self._head_started is None:
            self._head_started = self._now
        reader.feed(data)

    def next_event(self, now: float | None = None) -> ReceiveEvent:
        """Return the next event, :data:`NEED_DATA` or :data:`PAUSED`.

        Raises a :class:`RemoteProtocolError` subclass (with ``status_hint``) when the
        peer breaks the protocol or a limit; the connection is then unusable: send
        :meth:`error_response` and close.
        """
        if now is not None:
            self._now = now
            if self._idle_since is None:
                self._idle_since = now
        reader = self._reader
        phase = reader.phase
        try:
            if phase is _HEAD:
                if self._our_state is not _IDLE or self._their_state is _ERROR:
                    return PAUSED
                if reader.eof and reader.buffered() == 0:
                    if self._their_state is not _CLOSED:
                        self._their_state = _THEIRS[(self._their_state, _M_CLOSE)]
                    return _CONNECTION_CLOSED
                buf = reader.buf
                pos = reader.pos
                end = -1 if reader.acc is not None else buf.find(b"\r\n\r\n", pos)
                if end > pos and buf[pos] != 0x0D:
                    # The common case: a whole head in one piece, no empty line before it.
                    request = reader.parse_head(buf, pos, end)
                else:
                    parsed = reader.read_head_general()
                    if parsed is NEED_DATA:
                        return NEED_DATA
                    request = parsed  # type: ignore[assignment]
                self._their_state = _THEIRS_ON_REQUEST[self._their_state]
                self._our_state = _OURS_ON_REQUEST[_IDLE]
                self._head_started = None
                if self._limits.min_body_rate and reader.phase is not _DONE:
                    # The body begins now, with whatever followed the head in the buffer.
                    self._body_started = self._now
                    self._body_bytes = reader.buffered()
                count = self._request_count = self._request_count + 1
                self._expects_continue = reader.expect_continue
                max_requests = self._limits.max_requests
                if not reader.keep_alive_requested or (
                    max_requests is not None and count >= max_requests
                ):
                    self._keep_alive = False
                return request
            if phase is _DONE:
                if self._their_state is _SEND_BODY:
                    self._their_state = _THEIRS[(_SEND_BODY, _M_BODY_DONE)]
                return PAUSED
            if self._their_state is _ERROR:
                return PAUSED
            if phase is _FIXED and reader.remaining == 0:
                # The end of the body (or an empty body): the common second event.
                reader.phase = _DONE
                event: Data | EndOfMessage | Signal = EMPTY_EOM
            elif phase is _FIXED:
                event = reader.read_fixed()
            elif phase is _CHUNK_LINE and reader.received == 0 and reader.acc is None:
                # The first chunk: the whole body may be here already, plain.
                event = reader.read_whole_chunked() or reader.read_chunked()
            else:
                event = reader.read_chunked()
        except RemoteProtocolError:
            self._their_state = _THEIRS[(self._their_state, _M_FAIL)]
            self._keep_alive = False
            raise
        if event is NEED_DATA:
            if self._body_wait_since is None:
                self._body_wait_since = self._now
            return NEED_DATA
        if type(event) is Data:
            if self._discarding:
                return self.next_event()
            return event
        # EndOfMessage
        self._their_state = _THEIRS_ON_BODY_DONE[self._their_state]
        self._body_wait_since = None
        self._body_started = None
        if self._discarding:
            self._discarding = False
            self._begin_cycle()
            return self.next_event()
        return event

    # ---- sending -------------------------------------------------------------------------------

    def send(self, event: SendEvent) -> bytes:
        """Return the bytes that carry ``event`` to the peer.

        Raises :class:`LocalProtocolError` for an event that is illegal now (a body
        longer than its Content-Length, a second response, invalid fields, ...).
        """
        cls = type(event)
        if cls is Data:
            return self._send_data(event.data)  # type: ignore[union-attr]
        if cls is Response:
            return self._send_response(event)  # type: ignore[arg-type]
        if cls is EndOfMessage:
            return self._send_end(event.trailers)  # type: ignore[union-attr]
        if cls is InformationalResponse:
            return self._send_informational(event)  # type: ignore[arg-type]
        raise LocalProtocolError(f"cannot send {event!r}")

    def _move_ours(self, move: _Move) -> None:
        try:
            self._our_state = _OURS[(self._our_state, move)]
        except KeyError:
            self._ours_after(move)  # raises the LocalProtocolError

    def _ours_after(self, move: _Move) -> State:
        """Our state after ``move``, or LocalProtocolError if the table has no such move."""
        try:
            return _OURS[(self._our_state, move)]
        except KeyError:
            raise LocalProtocolError(
                f"cannot send {move.value.lower()} in state {self._our_state.value}"
            ) from None

    def _send_response(self, event: Response) -> bytes:
        if self._our_state not in _OURS_ON_RESPONSE:
            self._ours_after(_M_RESPONSE)  # raises the LocalProtocolError
        reader = self._reader
        if self._expects_continue and reader.phase is not P_DONE:
            # The client may or may not send the body it was waiting to send: the next request
            # boundary is unknowable, so this connection ends with this response.
            self._keep_alive = False
        self._expects_continue = False
        try:
            head, framing, length, keep_alive = write_response(
                event.status_code,
                event.headers,
                event.reason,
                head_request=reader.head_request,
                http10=reader.http10,
                keep_alive=self._keep_alive,
            )
        except LocalProtocolError:
            # Nothing was sent: the caller may still send a valid response.
            raise
        self._our_state = _OURS_ON_RESPONSE[self._our_state]
        self._keep_alive = keep_alive
        self._framing = framing
        self._remaining = length
        return head

    def _send_informational(self, event: InformationalResponse) -> bytes:
        status = event.status_code
        if status == 101:
            reader = self._reader
            if not reader.upgrade:
                raise LocalProtocolError("101 sent for a request that did not ask to upgrade")
            if reader.phase is not P_DONE:
                raise LocalProtocolError("101 sent before the request was complete")
            head = write_informational(status, event.headers, event.reason)
            self._move_ours(_M_SWITCH)
            self._their_state = _THEIRS[(self._their_state, _M_SWITCH)]
            self._expects_continue = False
            self._trailing = reader.take_remaining()
            return head
        head = write_informational(status, event.headers, event.reason)
        self._move_ours(_M_INFORMATIONAL)
        if status == 100:
            self._expects_continue = False
        return head

    def _send_data(self, data: bytes) -> bytes:
        if self._our_state is not _SEND_BODY:
            raise LocalProtocolError(f"cannot send body data in state {self._our_state.value}")
        framing = self._framing
        if framing is _LENGTH:
            remaining = self._remaining - len(data)
            if remaining < 0:
                raise LocalProtocolError("body is longer than the Content-Length sent")
            self._remaining = remaining
            return data
        if framing is _CHUNKED:
            if not data:
                return b""
            return b"%x\r\n%s\r\n" % (len(data), data)
        if framing is _CLOSE:
            return data
        if framing is _DROP:
            return b""
        if data:
            raise LocalProtocolError("this response cannot have a body (1xx, 204 or 304)")
        return b""

    def frame_body(self, length: int) -> tuple[bytes, bytes] | None:
        """Account for ``length`` body bytes that the caller sends itself.

        For bodies that bypass :meth:`send`, such as a file sent with
        ``os.sendfile``: returns the framing to write before and after those
        bytes (a chunk header and CRLF when chunked, else empty), or ``None``
        when they must not be sent at all (the response to HEAD). Raises
        :class:`LocalProtocolError` for more than the Content-Length sent, or
        for a body on a 1xx, 204 or 304 response.
        """
        if self._our_state is not _SEND_BODY:
            raise LocalProtocolError(f"cannot send body data in state {self._our_state.value}")
        if length < 0:
            raise LocalProtocolError("a body length cannot be negative")
        framing = self._framing
        if framing is _LENGTH:
            if length > self._remaining:
                raise LocalProtocolError("body is longer than the Content-Length sent")
            self._remaining -= length
            return (b"", b"")
        if framing is _CHUNKED:
            return (b"%x\r\n" % length, b"\r\n") if length else (b"", b"")
        if framing is _CLOSE:
            return (b"", b"")
        if framing is _NONE and length:
            raise LocalProtocolError("this response cannot have a body (1xx, 204 or 304)")
        return None

    def _send_end(self, trailers: Headers) -> bytes:
        framing = self._framing
        if self._our_state is _SEND_BODY:
            if framing is _LENGTH and self._remaining:
                raise LocalProtocolError(
                    f"body is {self._remaining} bytes shorter than the Content-Length sent"
                )
            if trailers and framing is not _CHUNKED:
                raise LocalProtocolError("trailers need a chunked response")
        try:
            self._our_state = _OURS_ON_RESPONSE_DONE[self._our_state]
        except KeyError:
            self._ours_after(_M_RESPONSE_DONE)  # raises the LocalProtocolError
        if not self._keep_alive or framing is _CLOSE:
            self._keep_alive = False
            self._our_state = _OURS[(self._our_state, _M_NO_REUSE)]
        if framing is not _CHUNKED:
            return b""
        if not trailers:
            return _LAST_CHUNK
        lines = [b"0\r\n"]
        lines.extend(b"%s: %s\r\n" % (name, value) for name, value in trailers)
        lines.append(b"\r\n")
        out = b"".join(lines)
        if not fields_ok(trailers, out[3:-2], len(trailers)):
            raise LocalProtocolError("invalid trailer field name or value")
        return out

    def send_failed(self) -> None:
        """Mark the connection unusable after the application failed mid-response."""
        self._our_state = _OURS[(self._our_state, _M_FAIL)]
        self._keep_alive = False

    # ---- cycles --------------------------------------------------------------------------------

    def start_next_cycle(self, now: float | None = None) -> bool:
        """Reset for the next request once the response is complete.

        An unread remainder of the request body is discarded when it is small
        (``Limits.max_drain_size``) and of known length; otherwise
        :attr:`keep_alive` becomes false. Returns :attr:`keep_alive`: when it is
        false, close the connection.
        """
        if now is not None:
            self._now = now
        if self._our_state is not _DONE_STATE:
            if self._our_state is _MUST_CLOSE:
                return False
            raise LocalProtocolError(
                f"start_next_cycle() while the response is in state {self._our_state.value}"
            )
        if not self._keep_alive:
            return False
        reader = self._reader
        if reader.phase is P_DONE:
            self._begin_cycle()
            return True
        # The application did not read the whole body: drain it if that is cheap and bounded.
        if reader.phase is P_FIXED and reader.remaining <= self._limits.max_drain_size:
            self._discarding = True
            self._our_state = _OURS[(self._our_state, _M_DRAIN)]
            return True
        self._keep_alive = False
        self._our_state = _OURS[(self._our_state, _M_NO_REUSE)]
        return False

    def _begin_cycle(self) -> None:
        self._their_state = _THEIRS_ON_NEXT_CYCLE[self._their_state]
        # After a drain our side is IDLE already (it moved on when start_next_cycle was called).
        if self._our_state is not _IDLE:
            self._our_state = _OURS_ON_NEXT_CYCLE[self._our_state]
        reader = self._reader
        reader.phase = _HEAD
        reader.head_request = False
        self._expects_continue = False
        self._idle_since = now = self._now
        self._body_wait_since = None
        self._body_started = None
        # Pipelined bytes already buffered are the start of the next head.
        self._head_started = now if reader.acc is not None or reader.pos < len(reader.buf) else None

    # ---- time ----------------------------------------------------------------------------------

    def next_deadline(self) -> tuple[float, Timer] | None:
        """The next absolute deadline and what its expiry means, or ``None``.

        There is a deadline only while the core waits for the peer: between
        requests (keep-alive), inside a request head, and while it waits for body
        bytes it asked for (``next_event`` returned ``NEED_DATA``).
        """
        reader = self._reader
        phase = reader.phase
        limits = self._limits
        if phase is P_HEAD:
            if self._our_state is not _IDLE and not self._discarding:
                return None
            if self._head_started is not None:
                return (self._head_started + limits.head_timeout, Timer.HEAD)
            if self._idle_since is None:
                return None  # no clock given yet: no deadline
            if self._request_count == 0:
                return (self._idle_since + limits.head_timeout, Timer.KEEP_ALIVE)
            return (self._idle_since + limits.keep_alive_timeout, Timer.KEEP_ALIVE)
        if phase is P_DONE or self._body_wait_since is None:
            return None
        deadline = self._body_wait_since + limits.body_timeout
        rate = limits.min_body_rate
        if rate and self._body_started is not None:
            # Limits.min_body_rate: body_timeout, plus a second per `rate` bytes received.
            deadline = min(
                deadline, self._body_started + limits.body_timeout + self._body_bytes / rate
            )
        return (deadline, Timer.BODY)

    def handle_timeout(self, now: float, headers: Headers = ()) -> bytes | None:
        """Act on an expired deadline.

        Returns ``None`` if nothing has expired at ``now`` (a spurious wake-up),
        as the WebSocket ``handle_timeout`` does. Otherwise the connection is
        finished: send the returned bytes (a 408 response when the head or the
        body timed out and no response has started, else ``b""``) and close.
        Test the result with ``is None``, not for truth: ``b""`` also means close. ``headers``
        are extra fields for that 408 (such as Date and Server), checked as
        :meth:`error_response` checks them.
        """
        self._now = now
        if self._idle_since is None:
            self._idle_since = now
        deadline = self.next_deadline()
        if deadline is None or now < deadline[0]:
            return None
        self._keep_alive = False
        self._their_state = _THEIRS[(self._their_state, _M_FAIL)]
        if deadline[1] is Timer.HEAD:
            return self.error_response(RequestTimeout("request head not received in time"), headers)
        if deadline[1] is Timer.BODY and self._our_state is _SEND_RESPONSE:
            return self.error_response(
                RequestTimeout("request body not received in time (stalled or too slow)"), headers
            )
        self._our_state = _OURS[(self._our_state, _M_FAIL)]
        return b""

    # ---- errors --------------------------------------------------------------------------------

    def error_response(self, error: BaseException, headers: Headers = ()) -> bytes:
        """Bytes of a complete error response for ``error``, or ``b""`` if too late.

        For a :class:`ProtocolError` the response has status ``error.status_hint``
        and a short plain-text body naming the problem. Any other exception (the
        application failed: ``except Exception as exc: conn.error_response(exc)``)
        gets a 500 whose body says only "Internal Server Error", never the
        exception's text. Either way the response carries
        ``Connection: close``, and any extra ``headers`` (such
        as Date and Server). Extra fields pass the checks of :meth:`send`: a name
        that is not a token, a value holding CR, LF, NUL or another control byte,
        or a field the core writes itself (Content-Length, Transfer-Encoding,
        Connection) raises :class:`LocalProtocolError`. The answer to a HEAD
        request carries the Content-Length of the body a GET would get, and no
        body (RFC 9110 9.3.2). Close the connection after sending it.
        """
        try:
            fields = b"".join([b"%s: %s\r\n" % (name, value) for name, value in headers])
        except TypeError:
            raise LocalProtocolError("header names and values must be bytes") from None
        if headers and (
            not fields_ok(headers, fields, len(headers))
            or not OWNED.isdisjoint([name.lower() for name, _ in headers])
        ):
            raise LocalProtocolError(
                "invalid extra field for an error response (CR, LF, NUL, not a token, "
                "or Content-Length, Transfer-Encoding or Connection, which the core writes)"
            )
        self._keep_alive = False
        too_late = self._our_state not in (_IDLE, _SEND_RESPONSE)
        self._our_state = _OURS[(self._our_state, _M_FAIL)]
        if too_late:
            return b""
        line = b""
        if isinstance(error, ProtocolError):
            status = error.status_hint
            if not 400 <= status < 600:
                status = 500 if isinstance(error, LocalProtocolError) else 400
            line = status_line(status, b"")
            phrase = line[13:-2].decode("latin-1")
            body = f"{status} {phrase}: {error.message}\n".encode("utf-8", "replace")
        else:
            status = 500
            line = status_line(status, b"")
            body = b"500 Internal Server Error\n"
        head = (
            b"%scontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n%s"
            b"connection: close\r\n\r\n" % (line, len(body), fields)
        )
        # The reader notes the method of the head it read last, even of one it refused.
        if self._reader.head_request:
            return head
        return head + body
