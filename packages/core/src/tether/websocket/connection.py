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

from collections.abc import Iterator

from tether.errors import RemoteProtocolError
from tether.websocket._framing import (
    _BINARY,
    _CLOSE,
    _CONTINUATION,
    _PING,
    _PONG,
    _TEXT,
    _trim_reason,
    _valid_close_code,
    mask,
)
from tether.websocket._send import SendSide
from tether.websocket._state import (
    _CLOSED,
    _CLOSING,
    _OPEN,
    Role,
    WebSocketState,
    WebSocketTimer,
    _Move,
)
from tether.websocket._utf8 import Utf8Decoder, decode
from tether.websocket.errors import (
    FrameError,
    InvalidCloseFrame,
    InvalidPayload,
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
)


class Connection(SendSide):
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

    __slots__ = ()

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
                self.received_size = length
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
                text = decode(payload)
                self.received_size = length
                yield Text(text)
                continue
            if b0 == 0x82 and not self._stream:
                self.received_size = length
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
        self.received_size = len(data) if stream else self._msg_size
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
                # Empty pieces (empty frames, bytes held for a partial character) are not
                # kept: a slot each would let endless empty frames grow memory past the
                # message limit.
                if text:
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
            if data:
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


__all__ = ["Connection", "Role", "WebSocketState", "WebSocketTimer", "mask"]
