"""A leaner byte stream over anyio's asyncio socket stream, with explicit read flow control.

anyio's asyncio ``SocketStream`` yields to the event loop on every ``send()`` (a checkpoint, a
whole loop iteration per response) and toggles reading on and off around every ``receive()``
that waits (two ``epoll_ctl`` calls per request). This wrapper keeps anyio's transport and
protocol but:

- ``send()`` writes at once and waits only while the transport holds unsent bytes (anyio set its
  write buffer limit to 0, so that is exactly "the peer is slow": back-pressure is unchanged);
- ``receive()`` takes buffered bytes without yielding, and reading stays on between requests;
  instead, reading is paused once more than :data:`HIGH_WATER` bytes wait unread and resumed
  when they fall to :data:`LOW_WATER`, so a request body is still never read faster than the
  application consumes it.

On event loops whose transports cache the protocol's callbacks (uvloop), the read side keeps
anyio's pause-after-every-read behaviour. TLS streams and trio use anyio's streams unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any

from anyio import BrokenResourceError, ClosedResourceError, EndOfStream
from anyio.abc import SocketStream

#: Unread bytes above which the socket is no longer read.
HIGH_WATER = 64 * 1024
#: Unread bytes at or below which reading resumes.
LOW_WATER = 16 * 1024


class FastStream:
    """The subset of :class:`anyio.abc.ByteStream` the server uses, for asyncio TCP and Unix."""

    __slots__ = ("_eager", "_paused", "_protocol", "_stream", "_transport", "_unread")

    def __init__(self, stream: SocketStream, transport: Any, protocol: Any) -> None:
        self._stream = stream
        self._transport = transport
        self._protocol = protocol
        self._unread = sum(len(chunk) for chunk in protocol.read_queue)
        self._paused = False
        # The selector event loop looks up protocol.data_received on every read, so counting
        # can hook in there; uvloop binds it once, so there we pause after each read instead.
        self._eager = type(transport).__module__.startswith("asyncio.")
        if self._eager:
            original = protocol.data_received

            def data_received(data: bytes) -> None:
                original(data)
                self._unread += len(data)
                if self._unread > HIGH_WATER and not self._paused:
                    self._paused = True
                    transport.pause_reading()

            protocol.data_received = data_received
            transport.resume_reading()
            if self._unread > HIGH_WATER:
                self._paused = True
                transport.pause_reading()

    @classmethod
    def wrap(cls, stream: Any) -> Any:
        """A :class:`FastStream` for an anyio asyncio socket stream, else ``stream`` itself."""
        transport = getattr(stream, "_transport", None)
        protocol = getattr(stream, "_protocol", None)
        if (
            isinstance(transport, asyncio.Transport)
            and protocol is not None
            and hasattr(protocol, "read_queue")
            and hasattr(protocol, "write_event")
        ):
            return cls(stream, transport, protocol)
        return stream

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """The next bytes from the peer; raises ``EndOfStream`` at EOF."""
        protocol = self._protocol
        queue = protocol.read_queue
        if not queue:
            transport = self._transport
            if not protocol.is_at_eof and not transport.is_closing():
                if self._eager:
                    if self._paused:
                        self._paused = False
                        transport.resume_reading()
                    await protocol.read_event.wait()
                else:
                    transport.resume_reading()
                    try:
                        await protocol.read_event.wait()
                    finally:
                        transport.pause_reading()
            if not queue:
                protocol.read_event.clear()
                if protocol.exception is not None:
                    raise BrokenResourceError from protocol.exception
                if transport.is_closing() and not protocol.is_at_eof:
                    raise ClosedResourceError
                raise EndOfStream
        chunk: bytes = queue.popleft()
        if len(chunk) > max_bytes:
            queue.appendleft(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        if not queue:
            protocol.read_event.clear()
        if self._eager:
            self._unread -= len(chunk)
            if self._paused and self._unread <= LOW_WATER:
                self._paused = False
                self._transport.resume_reading()
        return chunk

    async def send(self, data: bytes) -> None:
        """Write ``data``; wait while the peer is slow to take it."""
        protocol = self._protocol
        transport = self._transport
        if not protocol.write_event.is_set():
            await protocol.write_event.wait()
        if protocol.exception is not None:
            raise BrokenResourceError from protocol.exception
        if transport.is_closing():
            raise BrokenResourceError
        transport.write(data)
        if not protocol.write_event.is_set():
            await protocol.write_event.wait()
            if protocol.exception is not None:
                raise BrokenResourceError from protocol.exception

    async def send_eof(self) -> None:
        """Half-close: no more bytes from us."""
        await self._stream.send_eof()

    async def aclose(self) -> None:
        """Close the connection."""
        await self._stream.aclose()

    def extra(self, attribute: Any, default: Any = None) -> Any:
        """anyio typed attributes (addresses) of the underlying stream."""
        return self._stream.extra(attribute, default)
