"""The moving parts of one accepted WebSocket: a reader task, a writer task, the app's calls.

The session's rules (the inbox and its bounds, holding reading back while output is backed up,
the first close code, going away) are the core's :class:`tether.serving_websocket.WebSocketSession`;
this module moves bytes and wakes tasks. The reader parses what each read returned and fires the
core's timers from one cancel scope whose deadline moves; the app's ``send`` queues a frame in
the core and wakes the writer (frames queued in one loop iteration leave in one write), waiting
only while the output is above its high-water mark; the writer is the only task that writes
after the ``101``, so frames never interleave and no lock is taken per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import TYPE_CHECKING

import anyio
from anyio import EndOfStream

from tether import websocket as ws
from tether.serving_websocket import WebSocketSession
from tether_asyncio._types import READ_SIZE, STREAM_GONE, ClientDisconnected, Message

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from tether_asyncio._state import Owner

#: Seconds the close frame of a timed-out session may take before the socket is closed.
_LAST_FLUSH = 1.0


class Wakeup:
    """Tasks waiting for something another task will do (asyncio: bare futures). Not a latch:
    a waiter checks its condition before it waits, so no notify is missed on one loop."""

    __slots__ = ("_loop", "_waiters")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._waiters: list[asyncio.Future[None]] = []

    def notify(self) -> None:
        """Wake every task waiting now."""
        waiters = self._waiters
        if waiters:
            self._waiters = []
            for future in waiters:
                if not future.done():
                    future.set_result(None)

    async def wait(self) -> None:
        """Wait for the next :meth:`notify`."""
        future = self._loop.create_future()
        self._waiters.append(future)
        try:
            await future
        except BaseException:
            with contextlib.suppress(ValueError):
                self._waiters.remove(future)  # cancelled: do not keep it until a notify
            raise


class AnyioWakeup:
    """:class:`Wakeup` for trio, through anyio."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event: anyio.Event | None = None

    def notify(self) -> None:
        """Wake every task waiting now."""
        event = self._event
        if event is not None:
            self._event = None
            event.set()

    async def wait(self) -> None:
        """Wait for the next :meth:`notify`."""
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()


class WebSocketIO:
    """The reader, the writer and the app's ``receive``/``send`` of one accepted WebSocket."""

    __slots__ = (
        "_in_flight",
        "_inbox",
        "_output",
        "_progress",
        "_resume",
        "_stopping",
        "_timers",
        "app_closed",
        "lost",
        "owner",
        "reader_done",
        "rules",
        "writer_done",
        "ws",
    )

    def __init__(self, owner: Owner, conn: ws.Connection, max_queue: int | None) -> None:
        self.owner = owner
        self.ws = conn
        #: The core's session rules: inbox, reading holds, first close code.
        self.rules = WebSocketSession(conn, max_messages=max_queue)
        make = Wakeup if owner.state.config.backend == "asyncio" else AnyioWakeup
        self._inbox: Wakeup | AnyioWakeup = make()  # the app waits for messages
        self._output: Wakeup | AnyioWakeup = make()  # the writer waits for bytes to send
        self._resume: Wakeup | AnyioWakeup = make()  # the held reader waits to read again
        self._progress: Wakeup | AnyioWakeup = make()  # senders wait for the writer to drain
        #: Bytes the writer is sending now.
        self._in_flight = 0
        #: The reader's timer scope (its deadline is the core's next deadline).
        self._timers: anyio.CancelScope | None = None
        #: A write failed: the client is gone.
        self.lost = False
        #: The app began the closing handshake (``websocket.close``): a send after it is the
        #: app's mistake, not the client's (see :attr:`ended_by_client`).
        self.app_closed = False
        self.reader_done = anyio.Event()
        #: The writer returns once it has nothing left to send (see :meth:`stop`).
        self._stopping = False
        self.writer_done = anyio.Event()

    def start(self, group: TaskGroup) -> None:
        """Start the reader and the writer."""
        group.start_soon(self._reader)
        group.start_soon(self._writer)

    # -- the app's side --------------------------------------------------------------------------

    async def receive(self) -> Message:
        """The next ``websocket.receive``, or the ``websocket.disconnect`` once it ended."""
        rules = self.rules
        while (message := rules.take()) is None:
            if self.reader_done.is_set():
                return _disconnect(self.ws.close_code or 1006, self.ws.close_reason)
            await self._inbox.wait()
        if rules.held is not None and rules.resume(self._queued()):
            self._resume.notify()
        metrics = self.owner.state.metrics
        if metrics is not None and isinstance(message, str | bytes):
            metrics.message(incoming=True)
        if type(message) is str:
            return {"type": "websocket.receive", "text": message}
        if isinstance(message, ws.Close | ws.ConnectionLost):
            return _disconnect(message.code, getattr(message, "reason", ""))
        return {"type": "websocket.receive", "bytes": message}

    async def send(self, event: ws.Text | ws.Binary) -> None:
        """Queue a message for the writer; wait while the output is backed up."""
        conn = self.ws
        if self.lost or conn.state is not ws.State.OPEN:
            raise ClientDisconnected("the WebSocket is closed")
        conn.send(event)
        if self.owner.state.metrics is not None:
            self.owner.state.metrics.message(incoming=False)
        self._output.notify()
        while conn.write_paused:
            if self.lost:
                raise ClientDisconnected("the client has disconnected")
            await self._progress.wait()

    @property
    def ended_by_client(self) -> bool:
        """The session ended, or is ending, without the app asking: the client closed, broke
        the protocol, timed out or left, or the server is going away. A ``send`` then raises
        ``ClientDisconnected``; the app did nothing wrong, so that is no traceback to log."""
        return (
            self.lost
            or self.reader_done.is_set()
            or (self.ws.state is not ws.State.OPEN and not self.app_closed)
        )

    async def close(self, code: int, reason: str) -> None:
        """Start the closing handshake from our side (unless it has begun) and flush it."""
        self.app_closed = True
        if self.rules.close(code, reason, self.owner.state.clock):
            self._sent_close()
            await self.flushed()

    def going_away(self) -> None:
        """Server shutdown: start the closing handshake with 1001 (RFC 6455 7.4.1)."""
        if self.rules.going_away(self.owner.state.clock):
            self._sent_close()

    def app_returned(self) -> None:
        """The app is done: drop what it will never take, so reading is not held for it."""
        rules = self.rules
        rules.app_returned()
        if rules.held is not None and rules.resume(self._queued()):
            self._resume.notify()

    async def flushed(self) -> None:
        """Wait until everything queued was written (or the client is gone)."""
        self._output.notify()
        while (self.ws.pending_bytes or self._in_flight) and not self.lost:
            await self._progress.wait()

    def _sent_close(self) -> None:
        self._output.notify()
        scope = self._timers
        deadline = self.rules.deadline()
        if scope is not None and deadline is not None and deadline < scope.deadline:
            scope.deadline = deadline  # the close timer runs from now

    def _queued(self) -> int:
        return self.ws.pending_bytes + self._in_flight

    # -- the writer ------------------------------------------------------------------------------

    async def _writer(self) -> None:
        conn = self.ws
        rules = self.rules
        write = self.owner.write
        try:
            while True:
                data = conn.bytes_to_send()
                if not data:
                    self._progress.notify()
                    if self._stopping:
                        return
                    await self._output.wait()
                    continue
                self._in_flight = len(data)
                await write(data)
                self._in_flight = 0
                if rules.held is not None and rules.resume(self._queued()):
                    self._resume.notify()
                if not conn.write_paused:
                    self._progress.notify()
        except ClientDisconnected:
            self.lost = True
            self._in_flight = 0
            self._progress.notify()
            self._resume.notify()
        finally:
            self.writer_done.set()

    async def stop(self) -> bool:
        """The session is over: let an idle writer return by itself, and say whether both tasks
        have (else the caller cancels them). Cancelling is what a writer blocked on a slow
        client needs, but each cancelled task leaves a cycle (its error's traceback holds the
        frames that hold the error) for the cyclic collector: the usual end needs none."""
        if not self._queued():
            self._stopping = True
            self._output.notify()
            await self.writer_done.wait()
        return self.writer_done.is_set() and self.reader_done.is_set()

    # -- the reader ------------------------------------------------------------------------------

    async def _reader(self) -> None:
        conn = self.ws
        owner = self.owner
        try:
            while True:
                deadline = self.rules.deadline()
                with anyio.CancelScope(
                    deadline=math.inf if deadline is None else deadline
                ) as scope:
                    self._timers = scope
                    await self._read()
                self._timers = None
                if not scope.cancelled_caught:
                    return
                conn.handle_timeout(anyio.current_time())
                if conn.should_close_tcp:
                    # Pong or close timeout: send the close frame unless the writer is stuck,
                    # then close the socket, so that a write blocked in the app or writer ends.
                    if not self._in_flight:
                        with anyio.move_on_after(_LAST_FLUSH):
                            await self.flushed()
                    owner.closed = True
                    with contextlib.suppress(Exception):
                        await owner.stream.aclose()
                    return
                self._output.notify()  # a ping
        finally:
            self.reader_done.set()
            self._inbox.notify()

    async def _read(self) -> None:
        """Read, parse and deliver until the session ends (or the timer scope fires)."""
        conn = self.ws
        rules = self.rules
        owner = self.owner
        stream = owner.stream
        state = owner.state
        scope = self._timers
        assert scope is not None
        eof = False
        while True:
            if rules.take_events():
                self._inbox.notify()
            if conn.pending_bytes:
                self._output.notify()  # pongs, the close reply
            if conn.should_close_tcp or eof:
                await self.flushed()
                return
            if self.lost or owner.closed:
                return
            if not rules.should_read(self._queued()):
                await self._resume.wait()
                continue
            try:
                data = await stream.receive(READ_SIZE)
            except EndOfStream:
                data = b""
            except STREAM_GONE:
                owner.closed = True
                return
            conn.receive_data(data, state.clock)
            eof = not data
            deadline = rules.deadline()
            if deadline is not None and deadline < scope.deadline:
                scope.deadline = deadline


def _disconnect(code: int, reason: str) -> Message:
    return {"type": "websocket.disconnect", "code": code, "reason": reason}
