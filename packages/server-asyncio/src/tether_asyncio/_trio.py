"""The byte stream of one trio connection: the socket first, the scheduler only to wait.

anyio's trio stream yields to the scheduler on every receive and send, even when the kernel had
the bytes ready or took them at once. :class:`TrioStream` tries the non-blocking call first and
waits (cancellably) only when it would block; like :class:`tether_asyncio._stream.FastStream`
it yields after every send and every :data:`~tether_asyncio._stream.SEND_BUDGET` bytes read, so
a busy client cannot starve the others or hold off a cancellation, and a write that waits
``write_timeout`` seconds without the peer taking anything, or on a peer that reads slower than
``min_write_rate``, fails with :class:`~tether_asyncio._stream.WriteTimeout`
(:class:`tether.serving_pace.WritePace`).
Imported only with ``--backend trio``; under TLS, anyio's TLS stream runs over it.
"""

from __future__ import annotations

import contextlib
import math
import socket
from typing import TYPE_CHECKING, Any

import trio
from anyio import BrokenResourceError, ClosedResourceError, EndOfStream
from trio.lowlevel import checkpoint, notify_closing, wait_readable, wait_writable

from tether.serving_pace import WritePace
from tether_asyncio._stream import SEND_BUDGET, SEND_COST, WriteTimeout
from tether_server.tcpinfo import acked_bytes, reset_on_close

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from tether_server.server_metrics import ServerMetrics

_WOULD_BLOCK = (BlockingIOError, InterruptedError)


class TrioStream:
    """The subset of :class:`anyio.abc.ByteStream` the server uses, over an accepted,
    non-blocking socket (which it closes); with ``metrics``, it counts its write timeouts and,
    unless told not to (a TLS stream over it counts the decrypted bytes), its bytes in a cell."""

    __slots__ = (
        "_broken",
        "_budget",
        "_cell",
        "_metrics",
        "_min_rate",
        "_pace",
        "_sock",
        "_taken",
        "_write_timeout",
    )

    def __init__(
        self,
        sock: socket.socket,
        write_timeout: float | None = None,
        metrics: ServerMetrics | None = None,
        *,
        count_bytes: bool = True,
        min_write_rate: float = 0.0,
    ) -> None:
        self._sock = sock
        self._budget = SEND_BUDGET
        #: Seconds a write may wait without the peer taking anything (inf: forever), and the
        #: bytes a second the peer must average while waited on (0: no minimum).
        self._write_timeout = math.inf if write_timeout is None else write_timeout
        self._min_rate = min_write_rate
        #: The account of the waits on this peer (made at the first one), and the bytes sent
        #: since it began (what the peer took, where TCP_INFO says nothing: a Unix socket).
        self._pace: WritePace | None = None
        self._taken = 0
        self._metrics = metrics
        # Made on the trio thread, the one that runs every read and write of this stream.
        self._cell = metrics.cell() if metrics is not None and count_bytes else None
        #: A send was cut (cancelled) after part of its bytes went: the peer's byte stream has
        #: a hole, so nothing more may be written (anyio's TLS stream does the same).
        self._broken = False

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """The next bytes from the peer; raises ``EndOfStream`` at EOF. Cancel-safe: a
        cancelled call has taken no bytes."""
        sock = self._sock
        if self._budget < 0:
            # The others' turn once SEND_BUDGET bytes were read, taken before the next read: a
            # cancellation here loses nothing (after a read, it dropped the bytes read).
            self._budget = SEND_BUDGET
            await checkpoint()
        while True:
            try:
                data = sock.recv(max_bytes)
            except _WOULD_BLOCK:
                await _wait(wait_readable, sock)
                self._budget = SEND_BUDGET  # waiting was a turn for everyone else
                continue
            except OSError as exc:
                raise BrokenResourceError(str(exc)) from exc
            if not data:
                raise EndOfStream
            if self._cell is not None:
                self._cell.received += len(data)
            self._budget -= len(data) + SEND_COST
            return data

    async def send(self, item: bytes, /) -> None:
        """Write ``item``, waiting while the peer is slow to take it. Cancelled after part of
        it went, the stream is broken: a later send raises ``BrokenResourceError``."""
        if self._broken:
            raise BrokenResourceError("an earlier send was cut short")
        sock = self._sock
        view = memoryview(item)
        pace = None  # set once this send waits
        try:
            while view:
                try:
                    sent = sock.send(view)
                except _WOULD_BLOCK:
                    if pace is None:
                        pace = self._pace
                        if pace is None:
                            pace = self._pace = WritePace(self._write_timeout, self._min_rate)
                    # Writable again means progress: the peer read something since the last wait.
                    deadline = pace.wait(trio.current_time(), self._taken_bytes())
                    while True:
                        with trio.move_on_at(deadline) as scope:
                            await _wait(wait_writable, sock)
                        now = trio.current_time()
                        deadline = pace.progress(now, self._taken_bytes())
                        if not scope.cancelled_caught:
                            break
                        if now >= deadline:
                            reset_on_close(sock)  # the stream is closed next
                            if self._metrics is not None:
                                self._metrics.timeout("write")
                            raise WriteTimeout(pace.reason(now)) from None
                    self._budget = SEND_BUDGET
                    continue
                except OSError as exc:
                    raise BrokenResourceError(str(exc)) from exc
                if self._pace is not None:
                    self._taken += sent
                view = view[sent:]
        except BaseException:
            # The app's timeout, a framework's cancel: the next bytes written would land in the
            # middle of this write (a chunk cut short, then a new chunk's size line).
            if len(view) < len(item):
                self._broken = True
            raise
        finally:
            if pace is not None:
                pace.done(trio.current_time())
        if self._cell is not None:
            self._cell.sent += len(item)
        # A turn for the others after every write: else a client that answers at once is
        # served alone, in lockstep (25% fewer requests/s on bench/server.py's trio row).
        self._budget = SEND_BUDGET
        await checkpoint()

    def _taken_bytes(self) -> int:
        """What the peer took: TCP's acknowledged bytes, else what was sent since the first
        wait (a Unix socket)."""
        acked = acked_bytes(self._sock)
        return self._taken if acked is None else acked

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """None (the server reads the addresses from the socket): for anyio's TLS stream."""
        return {}

    async def send_eof(self) -> None:
        """Half-close: no more bytes from us."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)

    async def aclose(self) -> None:
        """Close the connection; a task waiting on the socket gets ``ClosedResourceError``."""
        if self._sock.fileno() != -1:
            notify_closing(self._sock)  # trio asks to be told before the socket closes
            self._sock.close()
        await checkpoint()


async def _wait(wait: Any, sock: socket.socket) -> None:
    """``wait(sock)``, with trio's error for a socket closed meanwhile (by another task:
    the WebSocket reader ends a session whose app is blocked in a send) as anyio's."""
    try:
        await wait(sock)
    except trio.ClosedResourceError:
        raise ClosedResourceError from None
