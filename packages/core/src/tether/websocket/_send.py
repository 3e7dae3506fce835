"""What a WebSocket connection keeps, and its sending side: events in, frames out.

:class:`SendSide` is the internal base of :class:`tether.websocket.Connection`:
its state (the closing handshake, the deadlines, the outgoing queue and its water
marks) and everything that turns events into frames. Reading frames is in
``connection.py``.
"""

from __future__ import annotations

from collections.abc import Callable

from tether.errors import LocalProtocolError
from tether.limits import Limits
from tether.websocket._framing import (
    _BINARY,
    _CLOSE,
    _CONTINUATION,
    _PING,
    _PONG,
    _TEXT,
    _pack_long,
    _pack_long_masked,
    _pack_short,
    _pack_short_masked,
    _valid_close_code,
    mask,
)
from tether.websocket._state import (
    _CLOSED,
    _OPEN,
    _TRANSITIONS,
    Role,
    WebSocketState,
    _Move,
)
from tether.websocket._utf8 import Utf8Decoder
from tether.websocket.deflate import Compressor, Decompressor, DeflateOptions
from tether.websocket.errors import (
    InvalidSend,
)
from tether.websocket.events import (
    Binary,
    Close,
    Ping,
    Pong,
    Text,
    WebSocketSendEvent,
)


class SendSide:
    """The state of one WebSocket connection and its sending side (internal base class)."""

    __slots__ = (
        "_auto_pong",
        "_buf",
        "_close_deadline",
        "_compressor",
        "_decoder",
        "_decompressor",
        "_eof",
        "_frame_fin",
        "_frame_mask",
        "_frame_remaining",
        "_limits",
        "_mask_source",
        "_max_frame",
        "_max_message",
        "_msg_deflate",
        "_msg_op",
        "_msg_size",
        "_now",
        "_out",
        "_out_size",
        "_parts",
        "_paused",
        "_ping_count",
        "_ping_deadline",
        "_pong_deadline",
        "_pong_payload",
        "_role",
        "_send_op",
        "_server",
        "_should_close_tcp",
        "_state",
        "_stream",
        "close_code",
        "close_reason",
        "received_size",
    )

    def __init__(
        self,
        role: Role,
        *,
        deflate: DeflateOptions | None = None,
        limits: Limits | None = None,
        stream: bool = False,
        mask_source: Callable[[int], bytes] | None = None,
        auto_pong: bool = True,
        now: float | None = None,
    ) -> None:
        """Create the connection for ``role`` with the negotiated ``deflate`` (or None)."""
        if role is Role.CLIENT and mask_source is None:
            raise LocalProtocolError("a client connection needs mask_source (e.g. os.urandom)")
        self._role = role
        self._server = role is Role.SERVER
        self._limits = limits = limits if limits is not None else Limits()
        self._max_frame = limits.ws_max_frame_size
        self._max_message = limits.ws_max_message_size
        self._stream = stream
        self._mask_source = mask_source
        self._auto_pong = auto_pong
        self._state = WebSocketState.OPEN
        self._buf = bytearray()
        self._eof = False
        self._should_close_tcp = False
        #: The close code received from the peer (1005: none given; 1006: connection lost),
        #: or the code we failed the connection with; None while open.
        self.close_code: int | None = None
        #: The close reason received from the peer, or why we failed the connection.
        self.close_reason: str = ""
        # frame in progress (payload partly received)
        self._frame_remaining = 0
        self._frame_mask = b""
        self._frame_fin = False
        #: The payload bytes (after permessage-deflate) of the last Text or Binary event
        #: :meth:`events` yielded: a text message's UTF-8 length, known before it was decoded,
        #: so a caller bounding what it holds counts bytes without encoding the text again.
        #: With ``stream=True``, the bytes of the last piece.
        self.received_size = 0
        # message in progress
        self._msg_op = 0
        self._msg_deflate = False
        self._msg_size = 0
        self._parts: list[bytes] | list[str] = []
        self._decoder: Utf8Decoder | None = None
        # outgoing
        self._out: list[bytes] = []
        self._out_size = 0
        self._paused = False
        self._send_op = 0
        self._compressor: Compressor | None = None
        self._decompressor: Decompressor | None = None
        if deflate is not None:
            if self._server:
                ours, ours_nct = deflate.server_max_window_bits, deflate.server_no_context_takeover
                theirs, theirs_nct = (
                    deflate.client_max_window_bits,
                    deflate.client_no_context_takeover,
                )
            else:
                ours, ours_nct = deflate.client_max_window_bits, deflate.client_no_context_takeover
                theirs, theirs_nct = (
                    deflate.server_max_window_bits,
                    deflate.server_no_context_takeover,
                )
            self._compressor = Compressor(ours, ours_nct, deflate.level, deflate.mem_level)
            self._decompressor = Decompressor(theirs_nct, theirs)
        # deadlines
        self._now = now
        self._close_deadline: float | None = None
        self._pong_deadline: float | None = None
        self._pong_payload: bytes | None = None
        self._ping_count = 0
        self._ping_deadline: float | None = None
        if limits.ws_ping_interval is not None and now is not None:
            self._ping_deadline = now + limits.ws_ping_interval

    # ---- state ----------------------------------------------------------------------------

    @property
    def role(self) -> Role:
        """Server or client."""
        return self._role

    @property
    def state(self) -> WebSocketState:
        """Where the closing handshake stands."""
        return self._state

    @property
    def should_close_tcp(self) -> bool:
        """Whether to close the TCP connection once :meth:`bytes_to_send` is written.

        RFC 6455 7.1.1: the server closes TCP as soon as the closing handshake is
        done (or the connection failed); a client waits for the server to close
        it, and gives up after ``Limits.ws_close_timeout`` (:attr:`WebSocketTimer.CLOSE`).
        """
        return self._should_close_tcp

    def _move(self, move: _Move) -> None:
        self._state = _TRANSITIONS[(self._state, move)]
        # Keep-alive pings only make sense while messages flow.
        self._ping_deadline = self._pong_deadline = None
        if self._state is _CLOSED:
            self._close_deadline = None
            if self._server or move is not _Move.RECEIVE_CLOSE or self._eof:
                self._should_close_tcp = True
            elif self._now is not None:
                # A client that completed the handshake waits for the server's TCP close.
                self._close_deadline = self._now + self._limits.ws_close_timeout

    def _set_now(self, now: float) -> None:
        if self._now is None and self._state is _OPEN:
            # The first time we learn the time: arm the keep-alive ping.
            interval = self._limits.ws_ping_interval
            if interval is not None:
                self._ping_deadline = now + interval
        self._now = now

    # ---- sending --------------------------------------------------------------------------

    def send(self, event: WebSocketSendEvent, now: float | None = None) -> None:
        """Queue an event's frame(s) for :meth:`bytes_to_send`.

        ``Text``/``Binary`` with ``fin=False`` start or continue a message sent
        in pieces. ``Close`` starts the closing handshake (``WebSocketTimer.CLOSE`` runs
        from ``now``). Raises :class:`~tether.websocket.errors.InvalidSend` for
        anything the protocol or the state forbids.
        """
        if now is not None:
            self._set_now(now)
        if self._state is not _OPEN:
            raise InvalidSend(f"cannot send {type(event).__name__} in state {self._state.name}")
        kind = type(event)
        if (
            (kind is Text or kind is Binary)
            and self._server
            and self._compressor is None
            and not self._send_op
            and event.fin  # type: ignore[union-attr]
        ):
            # Fast path: a whole small message from a server, one frame, no mask.
            if kind is Text:
                payload = event.data.encode("utf-8")  # type: ignore[union-attr]
                b0 = 0x80 | _TEXT
            else:
                payload = event.data  # type: ignore[union-attr]
                b0 = 0x80 | _BINARY
            n = len(payload)
            if n < 126:
                self._out.append(bytes((b0, n)) + payload)
                self._out_size = size = self._out_size + n + 2
                if size > self._limits.ws_write_high_water:
                    self._paused = True
                return
        if kind is Text or kind is Binary:
            if kind is Text:
                payload = event.data.encode("utf-8")  # type: ignore[union-attr]
                opcode = _TEXT
            else:
                payload = bytes(event.data)  # type: ignore[union-attr,arg-type]
                opcode = _BINARY
            fin: bool = event.fin  # type: ignore[union-attr]
            first = 0
            if self._send_op:
                if self._send_op != opcode:
                    raise InvalidSend("a message of the other type is being sent in pieces")
            else:
                first = opcode
            compressor = self._compressor
            if compressor is not None:
                payload = compressor.compress(payload, fin)
                b0 = (0x80 if fin else 0) | (0x40 if first else 0) | (first or _CONTINUATION)
            else:
                b0 = (0x80 if fin else 0) | (first or _CONTINUATION)
            self._send_op = 0 if fin else opcode
            self._queue_frame(b0, payload)
        elif kind is Ping or kind is Pong:
            payload = bytes(event.payload)  # type: ignore[union-attr]
            if len(payload) > 125:
                raise InvalidSend("control frame payload over 125 bytes (RFC 6455 5.5)")
            self._queue_frame(0x80 | (_PING if kind is Ping else _PONG), payload)
        elif kind is Close:
            code: int = event.code  # type: ignore[union-attr]
            reason: str = event.reason  # type: ignore[union-attr]
            if code == 1005:
                if reason:
                    raise InvalidSend("a close frame without a code cannot carry a reason")
                payload = b""
            elif not _valid_close_code(code):
                raise InvalidSend(f"close code {code} may not be sent (RFC 6455 7.4)")
            else:
                raw = reason.encode("utf-8")
                if len(raw) > 123:
                    raise InvalidSend("close reason over 123 bytes (RFC 6455 5.5)")
                payload = code.to_bytes(2, "big") + raw
            self._queue_frame(0x80 | _CLOSE, payload)
            self._move(_Move.SEND_CLOSE)
            if self._now is not None:
                self._close_deadline = self._now + self._limits.ws_close_timeout
        else:
            raise InvalidSend(f"cannot send {event!r}")

    def _queue_frame(self, b0: int, payload: bytes) -> None:
        n = len(payload)
        if self._server:
            if n < 126:
                header = bytes((b0, n))
            elif n < 65536:
                header = _pack_short(b0, 126, n)
            else:
                header = _pack_long(b0, 127, n)
        else:
            assert self._mask_source is not None
            key = self._mask_source(4)
            if len(key) != 4:
                raise InvalidSend("mask_source(4) must return 4 bytes")
            if n < 126:
                header = bytes((b0, 0x80 | n)) + key
            elif n < 65536:
                header = _pack_short_masked(b0, 0xFE, n, key)
            else:
                header = _pack_long_masked(b0, 0xFF, n, key)
            payload = mask(payload, key)
        out = self._out
        if n < 4096:
            out.append(header + payload)
        else:
            out.append(header)
            out.append(payload)
        self._out_size += len(header) + n
        if self._out_size > self._limits.ws_write_high_water:
            self._paused = True

    def bytes_to_send(self, max_bytes: int | None = None) -> bytes:
        """Take up to ``max_bytes`` (default: all) of the bytes waiting to be written."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        if max_bytes is not None and len(data) > max_bytes:
            out.append(data[max_bytes:])
            data = data[:max_bytes]
        self._out_size -= len(data)
        if self._out_size <= self._limits.ws_write_low_water:
            self._paused = False
        return data

    @property
    def pending_bytes(self) -> int:
        """How many bytes wait in :meth:`bytes_to_send`."""
        return self._out_size

    @property
    def write_paused(self) -> bool:
        """Whether a producer should pause: true once :attr:`pending_bytes` went above
        ``Limits.ws_write_high_water``, false again once it fell to ``ws_write_low_water``.
        """
        return self._paused
