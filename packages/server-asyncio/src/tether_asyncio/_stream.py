"""The byte stream of one asyncio connection: its own asyncio protocol, public APIs only.

The server accepts sockets itself and serves each through a :class:`FastStream`, both the
transport's protocol and the stream it reads and writes. Unlike anyio's socket stream, it costs
a few hundred bytes per idle connection (a future only while waiting; reads go into one
:class:`ReadBuffer` per loop), stops reading only above :data:`HIGH_WATER` unread bytes (no two
``epoll_ctl`` calls per request), yields every :data:`SEND_BUDGET` bytes sent so one fast
client cannot starve the others, and aborts a write that waits ``write_timeout`` seconds without
the peer taking anything, or on a peer that reads slower than ``min_write_rate`` (:class:`WriteTimeout`,
by :class:`tether.serving_pace.WritePace`). TLS wraps it with anyio's
:class:`~anyio.streams.tls.TLSStream`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from anyio import BrokenResourceError, BusyResourceError, ClosedResourceError, EndOfStream
from anyio.lowlevel import checkpoint

from tether.serving_pace import WritePace
from tether_server.tcpinfo import acked_bytes, reset_on_close

if TYPE_CHECKING:
    from tether_server.server_metrics import ServerMetrics

#: Unread bytes above which the socket is no longer read.
HIGH_WATER = 64 * 1024
#: Unread bytes at or below which reading resumes.
LOW_WATER = 16 * 1024
#: Bytes ``send()`` may write without waiting before it yields to the event loop once; each
#: call counts :data:`SEND_COST` more, so many small writes yield too.
SEND_BUDGET = 256 * 1024
SEND_COST = 4096


class WriteTimeout(BrokenResourceError):
    """A write waited ``write_timeout`` seconds without the peer taking anything (it stopped
    reading), or the peer reads slower than the minimum rate."""


class ReadBuffer:
    """The buffer every :class:`FastStream` of one event loop reads the socket into.

    Bytes are copied out at once at their size: asyncio's default reading allocates 256 KiB per
    ``recv`` and shrinks the result, which costs a 4 KiB page per idle keep-alive connection.
    """

    __slots__ = ("data", "view")

    def __init__(self, size: int = 65536) -> None:
        if not 0 < size <= HIGH_WATER:
            # One read then never passes HIGH_WATER alone (FastStream.buffer_updated).
            raise ValueError(f"a read buffer holds 1 to {HIGH_WATER} bytes, not {size}")
        self.data = bytearray(size)
        self.view = memoryview(self.data)


class FastStream(asyncio.BufferedProtocol):
    """The subset of :class:`anyio.abc.ByteStream` the server uses, for asyncio TCP and Unix."""

    __slots__ = (
        "_budget",
        "_buffer",
        "_closed",
        "_eof",
        "_exception",
        "_interrupted",
        "_loop",
        "_pace",
        "_read_paused",
        "_read_waiter",
        "_transport",
        "_view",
        "_write_paused",
        "_write_waiter",
        "metrics",
        "min_write_rate",
        "received",
        "sent",
        "write_timeout",
    )

    def __init__(
        self,
        write_timeout: float | None = None,
        read_buffer: ReadBuffer | None = None,
        metrics: ServerMetrics | None = None,
        min_write_rate: float = 0.0,
    ) -> None:
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Shared by the connections of one event loop (reads never overlap on a loop).
        self._view = (read_buffer or ReadBuffer()).view
        self._buffer = b""
        self._read_paused = False
        self._write_paused = False
        self._eof = False
        self._closed = False
        self._interrupted = False
        self._exception: BaseException | None = None
        self._read_waiter: asyncio.Future[None] | None = None
        self._write_waiter: asyncio.Future[bool] | None = None
        self._budget = SEND_BUDGET
        #: Seconds a write may wait without the peer taking anything before
        #: :class:`WriteTimeout` (None: forever), and the bytes per second the peer must
        #: average while waited on (0: no minimum).
        self.write_timeout = write_timeout
        self.min_write_rate = min_write_rate
        #: The account of the waits on this peer (made at the first one).
        self._pace: WritePace | None = None
        #: --metrics-port (None: off): write timeouts, and the bytes read and written.
        self.metrics = metrics
        self.received = 0
        self.sent = 0

    # -- the protocol side (called by the event loop) -------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self._transport = transport
        # Once a connection: before Python 3.12, get_running_loop() costs a getpid() call.
        self._loop = asyncio.get_running_loop()
        # Writes wait until the kernel took every byte: "the peer is slow" is exactly a
        # non-empty transport buffer, and no output piles up in user space.
        transport.set_write_buffer_limits(0)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if exc is not None:
            self._exception = exc
        self._wake_reader()
        self.resume_writing()  # a write waiting ends (it then raises: closed)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        if self.metrics is not None:
            self.received += nbytes
        data = bytes(self._view[:nbytes])
        buffered = self._buffer
        if not buffered:
            self._buffer = data  # no larger than the read buffer: below HIGH_WATER
        else:
            data = self._buffer = buffered + data
            if len(data) > HIGH_WATER and not self._read_paused:
                self._read_paused = True
                assert self._transport is not None
                self._transport.pause_reading()
        # _wake_reader(), inlined: this runs for every read.
        waiter = self._read_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def eof_received(self) -> bool:
        self._eof = True
        self._wake_reader()
        return True  # keep the write side open: a half-closed client still gets its response

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._write_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    def _wake_reader(self) -> None:
        waiter = self._read_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the stream side (called by the server) --------------------------------------------------

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """The next bytes from the peer; raises ``EndOfStream`` at EOF."""
        if self._read_waiter is not None:
            raise BusyResourceError("reading from")
        buffer = self._buffer
        if not buffer and not self._eof and not self._closed:
            # Never paused here: reading resumes before the buffer drops below LOW_WATER.
            waiter = self._read_waiter = self._loop.create_future()  # type: ignore[union-attr]
            try:
                await waiter
            finally:
                self._read_waiter = None
            buffer = self._buffer
        if self._interrupted:
            self._interrupted = False
            raise ClosedResourceError("interrupted")
        if not buffer:
            if self._exception is not None:
                raise BrokenResourceError from self._exception
            if self._closed and not self._eof:
                raise ClosedResourceError
            raise EndOfStream
        if len(buffer) > max_bytes:
            self._buffer = buffer[max_bytes:]
            buffer = buffer[:max_bytes]
        else:
            self._buffer = b""
        if self._read_paused and len(self._buffer) <= LOW_WATER:
            self._read_paused = False
            assert self._transport is not None
            self._transport.resume_reading()
        return buffer

    def interrupt(self) -> None:
        """Make the ``receive()`` waiting now raise ``ClosedResourceError`` (once): how the
        server ends an idle connection without a cancel scope per connection."""
        if self._read_waiter is not None:
            self._interrupted = True
            self._wake_reader()

    def write(self, data: bytes) -> bool:
        """Hand ``data`` to the transport without waiting; True when the caller must ``await
        flush()`` first (the peer is slow, or :data:`SEND_BUDGET` is spent): ``send()`` in two."""
        if self._write_waiter is not None:
            raise BusyResourceError("writing to")
        transport = self._transport
        if self._closed or transport.is_closing():  # type: ignore[union-attr]
            raise BrokenResourceError from self._exception  # None unless connection_lost()
        transport.write(data)  # type: ignore[union-attr]
        if self.metrics is not None:
            self.sent += len(data)
        if self._write_paused:
            return True
        self._budget -= len(data) + SEND_COST
        return self._budget < 0

    async def flush(self) -> None:
        """Wait until the peer took what :meth:`write` gave (at most ``write_timeout`` seconds
        without progress), or yield to the event loop once when the budget is spent."""
        self._budget = SEND_BUDGET
        if not self._write_paused:
            # The kernel takes everything a fast client reads: yield now and then, or this
            # task would run without end (other connections, cancel scopes wait).
            await checkpoint()
            return
        transport, loop = self._transport, self._loop
        assert transport is not None and loop is not None
        if self.write_timeout is None:
            while self._write_paused and not self._closed:
                waiter = self._write_waiter = loop.create_future()
                try:
                    await waiter
                finally:
                    self._write_waiter = None
        else:
            await self._paced_wait(transport, loop, self.write_timeout)
        if self._closed:  # closed while the bytes waited: they were not sent
            raise BrokenResourceError from self._exception

    async def _paced_wait(
        self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop, timeout: float
    ) -> None:
        """Wait for the peer to take what is queued, by the rules of :class:`WritePace`: what
        it took is what TCP says it acknowledged, else (a Unix socket) what left our buffer."""
        pace = self._pace
        if pace is None:
            pace = self._pace = WritePace(timeout, self.min_write_rate)
        sock = transport.get_extra_info("socket")
        left = transport.get_write_buffer_size()
        drained = 0  # what left our buffer, for a peer TCP_INFO says nothing about
        taken = acked_bytes(sock) if sock is not None else None
        deadline = pace.wait(loop.time(), drained if taken is None else taken)
        try:
            while self._write_paused and not self._closed:
                waiter = self._write_waiter = loop.create_future()
                timer = loop.call_at(deadline, _expire, waiter)
                try:
                    resumed = await waiter
                finally:
                    self._write_waiter = None
                    timer.cancel()
                now, size = loop.time(), transport.get_write_buffer_size()
                drained += max(0, left - size)
                left = size
                taken = acked_bytes(sock) if sock is not None else None
                deadline = pace.progress(now, drained if taken is None else taken)
                if not resumed and now >= deadline and self._write_paused:
                    self._closed = True
                    reset_on_close(sock)
                    transport.abort()
                    if self.metrics is not None:
                        self.metrics.timeout("write")
                    raise WriteTimeout(pace.reason(now))
        finally:
            pace.done(loop.time())

    async def send(self, data: bytes) -> None:
        """Write ``data``; wait while the peer is slow to take it (at most ``write_timeout``
        seconds without progress)."""
        if self.write(data):
            await self.flush()

    async def send_eof(self) -> None:
        """Half-close: no more bytes from us."""
        transport = self._transport
        if transport is not None and not transport.is_closing() and transport.can_write_eof():
            with contextlib.suppress(OSError):
                transport.write_eof()

    def close(self) -> None:
        """Close the connection: gracefully when every byte was sent, else at once (abort).
        Never waits, so a server closes without a shielded cancel scope per connection."""
        transport = self._transport
        if transport is not None and not transport.is_closing():
            if transport.get_write_buffer_size():
                transport.abort()
            else:
                transport.close()
        self._closed = True

    async def aclose(self) -> None:
        """:meth:`close`, as anyio's streams do it (a checkpoint: TLS closes through it)."""
        self.close()
        await checkpoint()

    @property
    def extra_attributes(self) -> dict[Any, Any]:
        """None (the server reads the addresses from the socket): for anyio's TLS stream."""
        return {}


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)
