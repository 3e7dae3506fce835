"""One WebSocket connection, either role: bytes in, events out; events in, bytes out.

The connection enforces every framing rule of RFC 6455 section 5 on what it
receives, validates text incrementally, runs the closing handshake of section
7 (answering the peer's close and pings itself) and tracks three deadlines
(close, ping, pong) from the times the caller passes in. It never reads a
clock, never touches a socket and has no hidden randomness: a client's masks
come from the ``mask_source`` the caller gives.

A receive failure raises a :class:`~tether.errors.RemoteProtocolError`
subclass whose ``close_code`` is the code the connection has already queued in
its close frame; the caller sends :meth:`Connection.bytes_to_send` and closes
the TCP connection. Failures are never reported as if the peer had closed.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Iterator

from tether.errors import LocalProtocolError, RemoteProtocolError
from tether.limits import Limits
from tether.websocket._utf8 import Utf8Decoder, decode
from tether.websocket.deflate import Compressor, Decompressor, DeflateOptions
from tether.websocket.errors import (
    FrameError,
    InvalidCloseFrame,
    InvalidPayload,
    InvalidSend,
    MessageTooBig,
)
from tether.websocket.events import (
    Binary,
    Close,
    ConnectionLost,
    Event,
    Ping,
    Pong,
    Text,
    WebSocketSendEvent,
)


class Role(enum.Enum):
    """Which end of the connection we are: it decides masking (RFC 6455 5.1) and TCP close."""

    SERVER = "SERVER"
    CLIENT = "CLIENT"


class WebSocketState(enum.Enum):
    """Where the closing handshake stands (RFC 6455 section 7)."""

    #: Messages flow both ways.
    OPEN = "OPEN"
    #: We sent a close frame and wait for the peer's; we send nothing more.
    CLOSING = "CLOSING"
    #: Both close frames were exchanged, or the connection failed or was lost.
    CLOSED = "CLOSED"


class WebSocketTimer(enum.Enum):
    """Which deadline :meth:`Connection.next_deadline` reports."""

    #: The peer's close frame (or, for a client, the server's TCP close) is overdue.
    CLOSE = "CLOSE"
    #: Time to send a keep-alive ping (``Limits.ws_ping_interval``).
    PING = "PING"
    #: The pong answering our ping is overdue (``Limits.ws_ping_timeout``): fail with 1011.
    PONG = "PONG"


class _Move(enum.Enum):
    SEND_CLOSE = "SEND_CLOSE"
    RECEIVE_CLOSE = "RECEIVE_CLOSE"
    FAIL = "FAIL"
    LOSE = "LOSE"
    TIME_OUT = "TIME_OUT"


#: Every legal state change; anything else is a bug in this module.
_TRANSITIONS: dict[tuple[WebSocketState, _Move], WebSocketState] = {
    (WebSocketState.OPEN, _Move.SEND_CLOSE): WebSocketState.CLOSING,
    (
        WebSocketState.OPEN,
        _Move.RECEIVE_CLOSE,
    ): WebSocketState.CLOSED,  # we answer the close at once
    (WebSocketState.OPEN, _Move.FAIL): WebSocketState.CLOSED,
    (WebSocketState.OPEN, _Move.LOSE): WebSocketState.CLOSED,
    (WebSocketState.CLOSING, _Move.RECEIVE_CLOSE): WebSocketState.CLOSED,
    (WebSocketState.CLOSING, _Move.FAIL): WebSocketState.CLOSED,
    (WebSocketState.CLOSING, _Move.LOSE): WebSocketState.CLOSED,
    (WebSocketState.CLOSING, _Move.TIME_OUT): WebSocketState.CLOSED,
}

_OPEN = WebSocketState.OPEN
_CLOSING = WebSocketState.CLOSING
_CLOSED = WebSocketState.CLOSED

_CONTINUATION, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

_pack_short = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack
_pack_short_masked = struct.Struct("!BBH4s").pack
_pack_long_masked = struct.Struct("!BBQ4s").pack


def _valid_close_code(code: int) -> bool:
    # RFC 6455 7.4.1/7.4.2 and the IANA registry (1012-1014); 1004-1006 and 1015 are
    # reserved and MUST NOT appear in a close frame; 3000-4999 are for libraries and apps.
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


# Big-integer conversions slow down past a few tens of KiB (cache effects), so large
# payloads are masked in blocks of this size (a multiple of 4: the key stays aligned).
_BLOCK = 64 * 1024


def _key_int(key: bytes, n: int) -> int:
    # Made per call, never remembered: a module-level memo of the last key would be state
    # shared between clients (the blocks of one call share it below).
    return int.from_bytes(key * (n >> 2) + key[: n & 3], "little")


def mask(data: bytes | bytearray | memoryview, key: bytes) -> bytes:
    """XOR ``data`` with the 4-byte masking ``key`` repeated (RFC 6455 5.3); it is its own inverse."""
    n = len(data)
    if n < 1024:
        if not n:
            return b""
        keys = int.from_bytes(key * (n >> 2) + key[: n & 3], "little")
        # One big-integer XOR runs at C speed: far faster than a byte loop in Python.
        return (int.from_bytes(data, "little") ^ keys).to_bytes(n, "little")
    if n <= _BLOCK:
        return (int.from_bytes(data, "little") ^ _key_int(key, n)).to_bytes(n, "little")
    keys = _key_int(key, _BLOCK)
    from_bytes = int.from_bytes
    with memoryview(data) as view:
        parts = [
            (from_bytes(view[i : i + _BLOCK], "little") ^ keys).to_bytes(_BLOCK, "little")
            for i in range(0, n - _BLOCK + 1, _BLOCK)
        ]
        rest = n % _BLOCK
        if rest:
            parts.append(
                (
                    from_bytes(view[n - rest :], "little") ^ (keys & ((1 << (8 * rest)) - 1))
                ).to_bytes(rest, "little")
            )
    return b"".join(parts)


class Connection:
    """A sans-I/O WebSocket connection after a successful opening handshake.

    Feed received bytes with :meth:`receive_data` (``b""`` when the peer closed
    TCP), iterate :meth:`events`, queue outgoing events with :meth:`send`, and
    write :meth:`bytes_to_send` to the socket. Close TCP once
    :attr:`should_close_tcp` is true and the bytes are written.

    ``deflate`` is the negotiated permessage-deflate agreement (from
    ``Accepted.deflate`` / ``Negotiated.deflate``), ``stream=True`` yields
    messages in pieces as frames (or parts of frames) arrive instead of whole
    (``ws_max_message_size`` still bounds each message), ``mask_source(4)``
    must return 4 random bytes per frame for a client (e.g. ``os.urandom``),
    ``auto_pong=False`` leaves answering pings to the caller. ``now`` is a
    reading of a monotonic clock in seconds (``time.monotonic()``,
    ``loop.time()``). As with ``tether.http1.ServerConnection``, no clock given
    means no deadlines: the ping and close timers start at the first call that
    passes ``now``. A client without ``mask_source`` raises
    :class:`~tether.errors.LocalProtocolError`.

    The connection answers a peer's close frame and pings by itself. Events
    are produced lazily: replies queued while handling an event (an echo)
    go out before the close answer to a close frame that follows it.
    """

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
                theirs_nct = deflate.client_no_context_takeover
            else:
                ours, ours_nct = deflate.client_max_window_bits, deflate.client_no_context_takeover
                theirs_nct = deflate.server_no_context_takeover
            self._compressor = Compressor(ours, ours_nct, deflate.level)
            self._decompressor = Decompressor(theirs_nct)
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

    # ---- receiving ------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float | None = None) -> None:
        """Add bytes received from the peer; ``b""`` means the peer closed TCP (EOF)."""
        if now is not None:
            self._set_now(now)
        if data:
            if self._state is not _CLOSED:
                self._buf += data
            # After the closing handshake (or a failure) input is ignored: RFC 6455 5.5.1
            # says nothing more is processed after a close frame.
        else:
            self._eof = True
            if self._state is _CLOSED:
                self._should_close_tcp = True
                self._close_deadline = None

    def events(self) -> Iterator[Event]:
        """Yield the events the received bytes make, until more bytes are needed.

        Raises a :class:`~tether.errors.RemoteProtocolError` subclass on bad
        input, after queueing the close frame with its ``close_code``.
        """
        try:
            yield from self._parse()
        except RemoteProtocolError as exc:
            self._fail(exc.close_code, exc.message)
            raise

    def _parse(self) -> Iterator[Event]:
        buf = self._buf
        server = self._server
        # The fast path below takes whole, small, unfragmented, uncompressed messages;
        # anything else (and anything wrong) goes through the full checks after it.
        fast = not self._stream
        small = min(125, self._max_frame, self._max_message)
        header_size = 6 if server else 2
        mask_bit = 0x80 if server else 0
        while self._state is not _CLOSED:
            if self._frame_remaining:
                event = self._continue_frame()
                if event is not None:
                    yield event
                if self._frame_remaining:
                    break
                continue
            avail = len(buf)
            if avail < 2:
                break
            b0 = buf[0]
            b1 = buf[1]
            if (
                fast
                and b0 in (0x81, 0x82)
                and (b1 & 0x80) == mask_bit
                and (b1 & 0x7F) <= small
                and avail >= header_size + (b1 & 0x7F)  # partial frames: UTF-8 fails early below
                and not self._msg_op
            ):
                length = b1 & 0x7F
                end = header_size + length
                if not length:
                    payload = b""
                elif server:
                    repeated = buf[2:6] * ((length >> 2) + 1)
                    payload = (
                        int.from_bytes(buf[6:end], "little")
                        ^ int.from_bytes(repeated[:length], "little")
                    ).to_bytes(length, "little")
                else:
                    payload = bytes(buf[2:end])
                del buf[:end]
                if b0 == 0x81:
                    try:
                        text = payload.decode()
                    except UnicodeDecodeError as exc:
                        raise InvalidPayload(
                            f"text message is not valid UTF-8: {exc.reason}"
                        ) from None
                    event = Text(text, True)
                else:
                    event = Binary(payload, True)
                yield event
                continue
            opcode = b0 & 0x0F
            length = b1 & 0x7F
            # -- RFC 6455 5.2: validate as soon as the first two bytes are here
            # RSV1 marks a compressed message (RFC 7692 6): only on the first frame of
            # a data message and only when permessage-deflate was negotiated.
            if b0 & 0x70 and (
                b0 & 0x30
                or self._decompressor is None
                or opcode not in (_TEXT, _BINARY)
                or self._msg_op
            ):
                raise FrameError(f"reserved bits set without an extension (0x{b0:02x})")
            if opcode >= 8:
                if opcode > _PONG:
                    raise FrameError(f"reserved control opcode 0x{opcode:x}")
                if not b0 & 0x80:
                    raise FrameError("fragmented control frame (RFC 6455 5.5)")
                if length > 125:
                    raise FrameError("control frame payload over 125 bytes (RFC 6455 5.5)")
            elif opcode == _CONTINUATION:
                if not self._msg_op:
                    raise FrameError("continuation frame without a message to continue")
            elif opcode <= _BINARY:
                if self._msg_op:
                    raise FrameError("new data frame inside a fragmented message (RFC 6455 5.4)")
            else:
                raise FrameError(f"reserved data opcode 0x{opcode:x}")
            if server:
                if not b1 & 0x80:
                    raise FrameError("client frames must be masked (RFC 6455 5.1)")
                header = 6
            else:
                if b1 & 0x80:
                    raise FrameError("server frames must not be masked (RFC 6455 5.1)")
                header = 2
            if length == 126:
                header += 2
                if avail < header:
                    break
                length = (buf[2] << 8) | buf[3]
                if length < 126:
                    raise FrameError("length not minimally encoded (RFC 6455 5.2)")
            elif length == 127:
                header += 8
                if avail < header:
                    break
                length = int.from_bytes(buf[2:10], "big")
                if length >> 63:
                    raise FrameError("64-bit length with the top bit set (RFC 6455 5.2)")
                if length < 65536:
                    raise FrameError("length not minimally encoded (RFC 6455 5.2)")
            elif avail < header:
                break
            if length > self._max_frame:
                raise MessageTooBig(f"frame of {length} bytes exceeds ws_max_frame_size")
            end = header + length
            # Uncompressed sizes are known before the payload is read: refuse early.
            if (
                opcode < 8
                and not (b0 & 0x40 or self._msg_deflate)
                and (self._msg_size if opcode == _CONTINUATION else 0) + length > self._max_message
            ):
                raise MessageTooBig("message exceeds ws_max_message_size")
            if avail < end:
                if opcode >= 8 or avail == header:
                    break  # control frames are tiny: wait for the whole frame
                # A data frame arriving in parts: consume what is here, so UTF-8 errors
                # fail early and large frames are not buffered twice.
                self._frame_remaining = length
                self._frame_fin = bool(b0 & 0x80)
                self._frame_mask = bytes(buf[header - 4 : header]) if server else b""
                if opcode:
                    self._start_message(opcode, bool(b0 & 0x40))
                del buf[:header]
                continue
            if server:
                key = bytes(buf[header - 4 : header])
                if length < 1024:
                    payload = mask(buf[header:end], key)
                else:
                    with memoryview(buf) as view:
                        payload = mask(view[header:end], key)
            else:
                payload = bytes(buf[header:end])
            del buf[:end]
            # -- fast paths: a whole unfragmented, uncompressed message
            if b0 == 0x81 and not self._stream:
                yield Text(decode(payload))
                continue
            if b0 == 0x82 and not self._stream:
                yield Binary(payload)
                continue
            if opcode < 8:
                if opcode:
                    self._start_message(opcode, bool(b0 & 0x40))
                event = self._message_data(payload, bool(b0 & 0x80))
                if event is not None:
                    yield event
            elif opcode == _PING:
                if self._auto_pong and self._state is _OPEN:
                    self._queue_frame(0x80 | _PONG, payload)
                yield Ping(payload)
            elif opcode == _PONG:
                if payload == self._pong_payload:
                    self._pong_payload = None
                    self._pong_deadline = None
                yield Pong(payload)
            else:
                yield self._receive_close(payload)
        if self._eof and self._state is not _CLOSED:
            self.close_code = 1006
            self._move(_Move.LOSE)
            buf.clear()
            yield ConnectionLost()

    def _start_message(self, opcode: int, deflated: bool) -> None:
        self._msg_op = opcode
        self._msg_deflate = deflated
        self._msg_size = 0
        self._parts = []
        self._decoder = Utf8Decoder() if opcode == _TEXT else None

    def _continue_frame(self) -> Text | Binary | None:
        # Part of a data frame's payload is here: unmask it with the key rotated to
        # where this part starts, and pass it on.
        buf = self._buf
        take = min(len(buf), self._frame_remaining)
        if not take:
            return None
        if self._server:
            key = self._frame_mask
            # Unmask straight from the buffer: the result is the only copy made.
            with memoryview(buf) as view:
                chunk = mask(view[:take], key)
            shift = take & 3
            self._frame_mask = key[shift:] + key[:shift]
        else:
            chunk = bytes(buf[:take])
        if take == len(buf):
            buf.clear()
        else:
            del buf[:take]
        self._frame_remaining -= take
        return self._message_data(chunk, self._frame_fin and not self._frame_remaining)

    def _message_data(self, data: bytes, end: bool) -> Text | Binary | None:
        # One frame's (or part of a frame's) payload of the current message.
        if self._msg_deflate:
            assert self._decompressor is not None
            data = self._decompressor.decompress(data, end, self._max_message - self._msg_size)
        self._msg_size += len(data)
        stream = self._stream
        if self._msg_op == _TEXT:
            assert self._decoder is not None
            text = self._decoder.feed(data, end)
            if end:
                self._msg_op = 0
                self._decoder = None
            if stream:
                return Text(text, end) if text or end else None
            parts: list[str] = self._parts  # type: ignore[assignment]
            if not end:
                parts.append(text)
                return None
            if parts:
                parts.append(text)
                text = "".join(parts)
                self._parts = []
            return Text(text)
        if end:
            self._msg_op = 0
        if stream:
            return Binary(data, end) if data or end else None
        chunks: list[bytes] = self._parts  # type: ignore[assignment]
        if not end:
            chunks.append(data)
            return None
        if chunks:
            chunks.append(data)
            data = b"".join(chunks)
            self._parts = []
        return Binary(data)

    def _receive_close(self, payload: bytes) -> Close:
        if not payload:
            code, reason = 1005, ""
        elif len(payload) == 1:
            raise InvalidCloseFrame("close frame with a 1-byte payload (RFC 6455 5.5.1)")
        else:
            code = (payload[0] << 8) | payload[1]
            if not _valid_close_code(code):
                raise InvalidCloseFrame(f"close code {code} may not be sent (RFC 6455 7.4)")
            reason = decode(payload[2:], "close reason")
        self.close_code = code
        self.close_reason = reason
        if self._state is _OPEN:
            # RFC 6455 5.5.1: answer with a close frame, echoing the status code.
            self._queue_frame(0x80 | _CLOSE, payload[:2])
        self._buf.clear()
        self._move(_Move.RECEIVE_CLOSE)
        return Close(code, reason)

    def _fail(self, code: int, reason: str) -> None:
        # RFC 6455 7.1.7 _Fail the WebSocket Connection_: send a close frame if we still
        # may, then the TCP connection is to be closed.
        if self._state is _CLOSED:
            return
        if self._state is _OPEN:
            self._queue_frame(0x80 | _CLOSE, code.to_bytes(2, "big") + _trim_reason(reason))
        self.close_code = code
        self.close_reason = reason
        self._buf.clear()
        self._frame_remaining = 0
        self._move(_Move.FAIL)

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

    # ---- deadlines ------------------------------------------------------------------------

    def next_deadline(self) -> tuple[float, WebSocketTimer] | None:
        """The earliest armed deadline (absolute time, which timer), or None."""
        best: tuple[float, WebSocketTimer] | None = None
        for when, timer in (
            (self._close_deadline, WebSocketTimer.CLOSE),
            (self._pong_deadline, WebSocketTimer.PONG),
            (self._ping_deadline, WebSocketTimer.PING),
        ):
            if when is not None and (best is None or when < best[0]):
                best = (when, timer)
        return best

    def handle_timeout(self, now: float) -> WebSocketTimer | None:
        """Act on the deadline that expired by ``now``; None when none has (a spurious wakeup).

        ``WebSocketTimer.PING`` queues a ping; ``WebSocketTimer.PONG`` fails the connection with
        1011; ``WebSocketTimer.CLOSE`` gives up on the closing handshake. Afterwards send
        :meth:`bytes_to_send` and close TCP if :attr:`should_close_tcp`.
        """
        self._now = now
        if self._close_deadline is not None and self._close_deadline <= now:
            self._close_deadline = None
            if self._state is _CLOSING:
                self.close_code = 1006
                self._move(_Move.TIME_OUT)
            self._should_close_tcp = True
            return WebSocketTimer.CLOSE
        if self._pong_deadline is not None and self._pong_deadline <= now:
            self._fail(1011, "ping timeout")
            return WebSocketTimer.PONG
        if self._ping_deadline is not None and self._ping_deadline <= now:
            interval = self._limits.ws_ping_interval
            assert interval is not None
            self._ping_count += 1
            payload = self._ping_count.to_bytes(4, "big")
            self._queue_frame(0x80 | _PING, payload)
            self._ping_deadline = now + interval
            if self._pong_deadline is None:
                self._pong_payload = payload
                self._pong_deadline = now + self._limits.ws_ping_timeout
            return WebSocketTimer.PING
        return None


def _trim_reason(reason: str) -> bytes:
    # A close reason fits in 123 bytes (RFC 6455 5.5); cut on a character boundary.
    raw = reason.encode("utf-8")
    if len(raw) <= 123:
        return raw
    return raw[:123].decode("utf-8", "ignore").encode("utf-8")


__all__ = ["Connection", "Role", "WebSocketState", "WebSocketTimer", "mask"]
