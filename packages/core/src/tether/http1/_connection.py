"""The server side of one HTTP/1.1 connection.

Bytes in (``receive_data``), events out (``next_event``); response events in
(``send``), bytes out. Time comes in as ``now`` and goes out as a deadline
(``next_deadline``, ``handle_timeout``). Nothing here reads a clock or touches
a socket, so the same object drives an asyncio server, a threaded server, and
a test feeding it by hand.

This module reads requests and keeps cycles and time; turning response events
into bytes is :class:`~tether.http1._respond.ResponseSide`, its base class, and
what the client side shares is in ``_common.py``.
"""

from __future__ import annotations

from tether.errors import LocalProtocolError, RemoteProtocolError, RequestTimeout
from tether.http1._events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Headers,
    ReceiveEvent,
    Signal,
)
from tether.http1._receive import RequestReader
from tether.http1._respond import ResponseSide
from tether.http1._send import Framing
from tether.http1._state import (
    OUR_TRANSITIONS,
    THEIR_TRANSITIONS,
    HTTPState,
    HTTPTimer,
    _Move,
    column,
)
from tether.http1._tables import EMPTY_EOM, P_CHUNK_LINE, P_DONE, P_FIXED, P_HEAD
from tether.limits import Limits

_DEFAULT_LIMITS = Limits()
_CONNECTION_CLOSED = ConnectionClosed()
_HEAD = P_HEAD
_FIXED = P_FIXED
_CHUNK_LINE = P_CHUNK_LINE
_DONE = P_DONE
_IDLE = HTTPState.IDLE
_CLOSED = HTTPState.CLOSED
_ERROR = HTTPState.ERROR
_SEND_BODY = HTTPState.SEND_BODY
_DONE_STATE = HTTPState.DONE
_SEND_RESPONSE = HTTPState.SEND_RESPONSE
_MUST_CLOSE = HTTPState.MUST_CLOSE
_T_HEAD = HTTPTimer.HEAD
_T_KEEP_ALIVE = HTTPTimer.KEEP_ALIVE
_T_BODY = HTTPTimer.BODY
_M_BODY_DONE = _Move.BODY_DONE
_M_CLOSE = _Move.CLOSE
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
_OURS_ON_NEXT_CYCLE = column(OUR_TRANSITIONS, _Move.NEXT_CYCLE)


class ServerConnection(ResponseSide):
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

    __slots__ = ("_body_bytes", "_body_started", "_discarding", "_idle_since", "_request_count")

    def __init__(self, limits: Limits | None = None, *, now: float | None = None) -> None:
        """A connection enforcing ``limits`` (default: ``Limits()``), opened at time ``now``.

        ``now`` and every later ``now`` argument are readings of one monotonic clock in
        seconds (``time.monotonic()``, ``loop.time()``), never wall-clock time (that is
        for :func:`~tether.http1.date_header`). Without a clock there are no deadlines:
        :meth:`next_deadline` returns ``None`` until a call passes ``now``, and the
        idle timer of a connection opened without one starts at that first ``now``.
        """
        limits = limits if limits is not None else _DEFAULT_LIMITS
        # Every attribute of the class and its bases, set here in one frame (a connection per
        # accepted socket; a test checks that none is missed): ConnectionBase's,
        self._limits = limits
        self._our_state = _IDLE
        self._their_state = _IDLE
        self._keep_alive = True
        self._now = now
        self._trailing = b""
        self._head_started: float | None = None
        self._body_wait_since: float | None = None
        # ResponseSide's,
        self._reader = RequestReader(limits)
        self._framing = Framing.NONE
        self._remaining = 0
        self._expects_continue = False
        # and this class's own.
        self._discarding = False
        # When the connection went idle (None: no clock given yet).
        self._idle_since = now
        # For Limits.min_body_rate: when the current request's body began (None: no body
        # being read), and the bytes received since.
        self._body_started: float | None = None
        self._body_bytes = 0
        self._request_count = 0

    # ---- properties ----------------------------------------------------------------------------

    @property
    def wants_data(self) -> bool:
        """Whether a push-style caller should keep reading the socket.

        False once the peer sent EOF, while the current request is complete and
        its response pending (``next_event`` gives ``PAUSED``), or while
        ``Limits.max_buffered_bytes`` or more are held unread. While it is true,
        :meth:`receive_data` accepts the next chunk without raising.
        """
        reader = self._reader
        if reader.eof:
            return False
        # reader.buffered(), without the call: this is read after every response.
        acc = reader.acc
        held = len(acc) if acc is not None else len(reader.buf) - reader.pos
        if held >= self._limits.max_buffered_bytes:
            return False
        # The request is complete: nothing more is read until start_next_cycle.
        return reader.phase is not P_DONE and self._their_state is not _ERROR

    @property
    def request_count(self) -> int:
        """Requests started on this connection (heads read, refused ones excluded)."""
        return self._request_count

    @property
    def buffered_bytes(self) -> int:
        """Received bytes not yet turned into events."""
        return self._reader.buffered()

    @property
    def fresh(self) -> bool:
        """Nothing received yet: no request read and no byte of one buffered.

        At a graceful shutdown such a connection is not idle the way one between requests is
        (the client may be sending its first request now, and would not retry it): a server
        closes it only after ``tether.serving_cycle.RULES.fresh_grace_seconds``.
        """
        return not self._request_count and not self._reader.buffered()

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
        if reader.buffered() == 0 and reader.phase is _HEAD and self._head_started is None:
            self._head_started = self._now
        self._hold(reader, data)

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
                if pos >= len(buf) and reader.acc is None:
                    # Nothing buffered (a push-style server asks again after each response).
                    return NEED_DATA
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
        if reader.acc is not None:
            reader.scan = 0  # searched and checked afresh, as the next head's first bytes
            self._head_started = now
        else:
            self._head_started = now if reader.pos < len(reader.buf) else None

    # ---- time ----------------------------------------------------------------------------------

    def next_deadline(self) -> tuple[float, HTTPTimer] | None:
        """The next absolute deadline and what its expiry means, or ``None``.

        There is a deadline only while the core waits for the peer: between
        requests (keep-alive), inside a request head, and while it waits for body
        bytes it asked for (``next_event`` returned ``NEED_DATA``). A head that is
        already whole in the buffer has none, even before ``next_event`` parses it:
        the peer is not late, the server is (say, still writing earlier responses
        to a client that does not read them, which its write timeout covers).
        """
        reader = self._reader
        phase = reader.phase
        limits = self._limits
        if phase is P_HEAD:
            if self._our_state is not _IDLE and not self._discarding:
                return None
            if self._head_started is not None:
                if reader.head_complete():
                    # The whole head is here (a pipelined request behind a response the client
                    # is slow to read): the peer sent it in time, and the server has not asked
                    # for it yet. A client that does not read is the write side's business
                    # (the server's write timeout), so no 408 for a head that arrived.
                    return None
                return (self._head_started + limits.head_timeout, _T_HEAD)
            if self._idle_since is None:
                return None  # no clock given yet: no deadline
            if self._request_count == 0:
                return (self._idle_since + limits.head_timeout, _T_KEEP_ALIVE)
            return (self._idle_since + limits.keep_alive_timeout, _T_KEEP_ALIVE)
        if phase is P_DONE or self._body_wait_since is None:
            return None
        deadline = self._body_wait_since + limits.body_timeout
        rate = limits.min_body_rate
        if rate and self._body_started is not None:
            # Limits.min_body_rate: body_timeout, plus a second per `rate` bytes received.
            deadline = min(
                deadline, self._body_started + limits.body_timeout + self._body_bytes / rate
            )
        return (deadline, _T_BODY)

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
        if deadline[1] is HTTPTimer.HEAD:
            return self.error_response(RequestTimeout("request head not received in time"), headers)
        if deadline[1] is HTTPTimer.BODY and self._our_state is _SEND_RESPONSE:
            return self.error_response(
                RequestTimeout("request body not received in time (stalled or too slow)"), headers
            )
        self._our_state = _OURS[(self._our_state, _M_FAIL)]
        return b""
