"""The server: listening, accepting within limits, time, signals and graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus
from anyio.streams.tls import TLSAttribute, TLSStream

from tether.serving import ConnectionGate
from tether.serving_drain import AtDrain, Drain
from tether_asyncio._config import Config, ConfigError, bind_socket, create_ssl_context, load_app
from tether_asyncio._http import HTTPConnection
from tether_asyncio._lifespan import Lifespan, LifespanFailure
from tether_asyncio._state import ServerState, error_log
from tether_asyncio._stream import FastStream, ReadBuffer
from tether_asyncio._tls import CountedStream, handshake
from tether_asyncio._types import Stream
from tether_server.asgi_tls import TLSInfo
from tether_server.binding import ACCEPT_PAUSE, refuse_new_connections
from tether_server.logfiles import REOPEN_SIGNAL, on_reopen_signal
from tether_server.server_metrics import byte_totals
from tether_server.startup import (
    COUNT_SIGNALS,
    STOP_SIGNALS,
    STOPPED_MESSAGE,
    WorkerLink,
    app_label,
    drain_timeout_message,
    draining_message,
    forces_stop,
    notify_serving,
    on_count_signal,
    on_stop_signal,
    running_message,
    where_text,
)
from tether_server.stopping import StopWatchdog

#: Seconds between ticks of the clock that drives timeouts and the Date header.
TICK = 0.2
#: Exit status when the application's lifespan startup fails (uvicorn uses the same).
STARTUP_FAILURE = 3


class Server:
    """One server run. ``run()`` blocks; ``serve()`` is the async body for an existing loop."""

    def __init__(self, config: Config) -> None:
        self.config = config
        #: Set once the socket listens and lifespan startup is done (for tests and embedders).
        self.ready = threading.Event()
        #: The address actually bound: (host, port) for TCP, the path for a Unix socket.
        self.address: Any = None
        self.exit_code = 0
        self.state: ServerState | None = None
        self._exit_requested = False
        #: A stop signal cut the graceful shutdown short (see _force_stop).
        self._forced = False
        self._exit: anyio.Event | None = None
        self._resume: anyio.Event | None = None
        self._drained: anyio.Event | None = None
        self._connections_scope: anyio.CancelScope | None = None
        #: What this process tells its supervisor or systemd (set once serving).
        self._link: WorkerLink | None = None
        self._ssl: ssl.SSLContext | None = None
        #: What the ASGI TLS extension of each TLS connection is made from.
        self._tls: TLSInfo | None = None
        #: What every asyncio connection reads its socket into (see _stream.ReadBuffer).
        self._read_buffer = ReadBuffer()
        #: On trio, what a connection's socket is served through (see _trio.TrioStream).
        self._trio_stream: Any = None
        #: The asyncio connections' tasks (see _accept).
        self._tasks: set[asyncio.Task[None]] = set()
        self._gate = ConnectionGate(config.limit_connections, config.limit_connections_low)

    # -- entry points ----------------------------------------------------------------------------

    def run(self) -> int:
        """Load the app, bind, serve until told to stop; return the process exit status.

        Raises :class:`ConfigError` for problems the user must fix.
        """
        config = self.config
        options: dict[str, Any] = {}
        if config.backend == "asyncio" and config.loop in ("auto", "uvloop"):
            try:
                import uvloop  # noqa: F401
            except ImportError:
                if config.loop == "uvloop":
                    raise ConfigError(
                        "--loop uvloop: uvloop is not installed "
                        "(pip install 'tether-server-asyncio[uvloop]')"
                    ) from None
            else:
                options["use_uvloop"] = True
        if config.backend == "trio":
            try:
                import trio  # noqa: F401
            except ImportError:
                raise ConfigError(
                    "--backend trio: trio is not installed (pip install 'tether-server-asyncio[trio]')"
                ) from None
        app = load_app(config)
        config.trusted_proxies()  # a bad --forwarded-allow-ips fails here, before binding
        self._ssl = create_ssl_context(config)
        if self._ssl is not None and config.ssl_certfile is not None:
            self._tls = TLSInfo(self._ssl, config.ssl_certfile)
        sock = bind_socket(config)
        try:
            exporter = config.metrics_exporter()  # --metrics-port
        except BaseException:
            sock.close()
            raise
        if exporter is not None:
            exporter.start()
        try:
            anyio.run(self.serve, app, sock, backend=config.backend, backend_options=options)
        except KeyboardInterrupt:
            self.exit_code = self.exit_code or 130
        finally:
            if exporter is not None:
                exporter.close()
        error_log.info("%s", STOPPED_MESSAGE)
        return self.exit_code

    def request_exit(self) -> None:
        """Ask the server to shut down gracefully; safe from any thread or signal handler."""
        self._exit_requested = True

    async def serve(self, app: Any, sock: socket.socket) -> None:
        """Serve ``app`` on the listening socket ``sock`` until shutdown."""
        config = self.config
        state = ServerState(config, app)
        self.state = state
        if state.metrics is not None:
            state.metrics.watch(lambda: _counts(state))
            # Plain-TCP asyncio connections count their bytes in their FastStream.
            state.metrics.watch_bytes(
                lambda: byte_totals([conn.fast for conn in list(state.connections)])
            )
        state.refresh(anyio.current_time())
        self._exit = anyio.Event()
        self.address = sock.getsockname()
        # The server accepts on the socket itself and serves each connection's socket through
        # its own stream: _stream.FastStream (an asyncio protocol) or _trio.TrioStream.
        if config.backend == "trio":
            from tether_asyncio._trio import TrioStream  # trio is optional: only imported here

            self._trio_stream = TrioStream
        lifespan = Lifespan(state)
        async with anyio.create_task_group() as root:
            root.start_soon(self._ticker)
            if (
                config.install_signal_handlers
                and threading.current_thread() is threading.main_thread()
            ):
                # Started (handlers installed) before the start-up line and READY=1: an
                # operator's SIGTERM sent on seeing them must drain, not kill.
                await root.start(self._watch_signals)
            try:
                await lifespan.startup(root)
            except LifespanFailure as exc:
                error_log.error("application startup failed: %s", exc)
                self.exit_code = STARTUP_FAILURE
                sock.close()
                root.cancel_scope.cancel()
                return
            where = where_text(self.address, tls=config.is_ssl, uds=config.uds)
            if config.fd is not None and not isinstance(self.address, tuple):
                where = f"fd {config.fd}"
            kind = f"ASGI, {config.backend}"
            error_log.info("%s", running_message(where, app_label(config.app), kind))
            async with anyio.create_task_group() as connections:
                self._connections_scope = connections.cancel_scope
                if self._forced:  # SIGQUIT during lifespan startup
                    connections.cancel_scope.cancel()
                # Left only once the accept task has: the socket is closed after it, or a
                # selector callback still registered for it would fire on a closed descriptor.
                # Closed also when a forced stop cancels this block while it waits.
                try:
                    async with anyio.create_task_group() as accepting:
                        accepting.start_soon(self._accept, sock, connections)
                        self.ready.set()
                        # A --workers supervisor (or systemd) waits for it; heartbeats on the tick.
                        self._link = notify_serving(config.notify_fd)
                        await self._exit.wait()
                        if self._link is not None:
                            self._link.stopping()  # a lone server's STOPPING=1 to systemd
                        accepting.cancel_scope.cancel()
                    self._accept_queued(sock, connections)
                finally:
                    sock.close()
                await self._drain(state)
                self._cancel_tasks()
                connections.cancel_scope.cancel()
            if self._tasks:
                await asyncio.wait(self._tasks)
            with anyio.move_on_after(config.timeout_graceful_shutdown or 30):
                await lifespan.shutdown()
            root.cancel_scope.cancel()

    # -- accepting -------------------------------------------------------------------------------

    async def _accept(self, sock: socket.socket, group: TaskGroup) -> None:
        # On the socket itself, on both backends. Not loop.sock_accept: cancelling it at
        # shutdown races its selector callback, which can accept a connection into a cancelled
        # future; here the wait only says "readable", so cancelling takes nothing. On asyncio
        # each connection is a bare task of the loop: anyio's start_soon costs ~7x the task
        # itself (a task handle, a cancel scope, an event); trio's are the connections group's.
        gate = self._gate
        sock.setblocking(False)
        tcp = sock.family in (socket.AF_INET, socket.AF_INET6)
        if self._trio_stream is None:
            loop = asyncio.get_running_loop()
            readable = partial(_readable, loop, sock.fileno())
        else:
            from trio.lowlevel import checkpoint, wait_readable

            readable = partial(wait_readable, sock)
        while True:
            if not gate.accepting:
                self._resume = anyio.Event()
                await self._resume.wait()
            await readable()
            # Take what the backlog holds (up to the gate), not one per wake-up.
            while gate.accepting:
                try:
                    client, _ = sock.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:
                    # Out of file descriptors and the like: the backlog stays readable, so
                    # pause as asyncio's own server does (and say so once a pause), not spin.
                    error_log.warning(
                        "accept failed: %s; pausing accepting for %g s", exc, ACCEPT_PAUSE
                    )
                    await anyio.sleep(ACCEPT_PAUSE)
                    break
                self._start_connection(client, tcp, group)
                if self._trio_stream is not None:
                    # Its first turn before the next accept, as with trio's own accept: trio
                    # runs a batch of new tasks in random order, and connections are served
                    # in the order they came (asyncio's tasks start in order).
                    await checkpoint()

    def _start_connection(self, client: socket.socket, tcp: bool, group: TaskGroup) -> None:
        """Serve the accepted socket ``client`` in a task of its own."""
        client.setblocking(False)
        if tcp:
            with contextlib.suppress(OSError):
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._gate.opened()
        if self._trio_stream is None:
            task = asyncio.get_running_loop().create_task(self._connection(client))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            group.start_soon(self._connection, client)

    def _accept_queued(self, sock: socket.socket, group: TaskGroup) -> None:
        """At a stop, once the accept task has ended and before the listener closes: take every
        connection the kernel has queued, past the gate's limit too. Their clients' connect()
        has succeeded and their requests may be on the way; closing the last copy of the
        listener would reset them. They are served by the graceful drain like the others."""
        tcp = sock.family in (socket.AF_INET, socket.AF_INET6)
        refuse_new_connections(sock)  # else more would come between the last accept and close
        while True:
            try:
                client, _ = sock.accept()
            except OSError:  # BlockingIOError: none left; anything else: nothing more to take
                return
            self._start_connection(client, tcp, group)

    async def _connection(self, accepted: socket.socket) -> None:
        """Serve one accepted connection's socket."""
        state = self.state
        assert state is not None
        stream: Any = None
        # Under TLS the byte counters (--metrics-port) count decrypted bytes, as on every
        # server (CountedStream), not those of the stream under the TLS stream.
        metrics = state.metrics
        cell = None if self._ssl is None or metrics is None else metrics.cell()
        try:
            try:
                if self._trio_stream is None:
                    transport, stream = await asyncio.get_running_loop().connect_accepted_socket(
                        lambda: FastStream(
                            state.write_timeout, self._read_buffer, metrics, state.min_write_rate
                        ),
                        accepted,
                    )
                    # The transport looked these up already: share its objects.
                    peer = transport.get_extra_info("peername")
                    local = transport.get_extra_info("sockname")
                else:
                    stream = self._trio_stream(
                        accepted,
                        state.write_timeout,
                        metrics,
                        count_bytes=cell is None,
                        min_write_rate=state.min_write_rate,
                    )
                    peer, local = accepted.getpeername(), accepted.getsockname()
            except Exception:  # reset before we looked: no peer name, or no socket at all
                if stream is None:
                    accepted.close()
                else:
                    await anyio.aclose_forcefully(stream)
                return
            client = _ip_address(peer)
            server = (local, None) if isinstance(local, str) else _ip_address(local)
            byte_stream: Stream = stream
            tls = None
            if self._ssl is not None:
                tls_stream = await self._handshake(stream)
                if tls_stream is None:
                    return
                assert self._tls is not None
                tls = self._tls.extension(tls_stream.extra(TLSAttribute.ssl_object))
                byte_stream = tls_stream if cell is None else CountedStream(tls_stream, cell)
            await HTTPConnection(state, byte_stream, client=client, server=server, tls=tls).run()
        except Exception:
            # HTTPConnection.run() never raises; this is the last guard that keeps one
            # connection's failure from ending the task group, and so the server.
            error_log.exception("unexpected error on a connection")
            if stream is not None:
                await anyio.aclose_forcefully(stream)
        finally:
            if self._gate.closed() and self._resume is not None:
                self._resume.set()
            # The gate counts every accepted socket, also one whose task has not yet reached
            # HTTPConnection (state.connections): the drain waits for those as well.
            if state.shutting_down and not self._gate.open and self._drained is not None:
                self._drained.set()

    def _cancel_tasks(self) -> None:
        """End the asyncio connections still open (``serve`` then waits for their tasks)."""
        for task in self._tasks:
            task.cancel()

    async def _handshake(self, stream: Any) -> TLSStream | None:
        """The TLS stream over ``stream``, or None (the connection closed) when the handshake
        fails or takes longer than ``timeout_tls_handshake``: whatever the client does (a port
        scan, plain HTTP, an alert) fails only its own connection, logged at debug level."""
        assert self._ssl is not None
        try:
            with anyio.fail_after(self.config.timeout_tls_handshake):
                return await handshake(stream, self._ssl)
        except Exception as exc:  # EndOfStream, BrokenResourceError, SSLError, OSError, timeout
            error_log.debug("TLS handshake failed: %s", exc or type(exc).__name__)
            await anyio.aclose_forcefully(stream)
            return None

    # -- time, signals, shutdown -----------------------------------------------------------------

    async def _ticker(self) -> None:
        """Refresh the clock and Date header; expire idle connections' deadlines; tell the
        supervisor (or systemd's watchdog) that the loop runs."""
        state = self.state
        assert state is not None
        while True:
            now = anyio.current_time()
            state.refresh(now)
            if self._link is not None:
                self._link.heartbeat(now)
            if self._exit_requested and self._exit is not None:
                self._exit.set()
            for connection in list(state.connections):
                connection.tick(now)
            if state.drain is not None and state.drain.fresh_due(now):
                # Past the grace: close the connections still waiting for a first request of
                # which no byte came (one with part of a head keeps its timeout).
                for connection in list(state.connections):
                    if connection.idle and connection.conn.fresh:
                        connection.interrupt()
            await anyio.sleep(TICK)

    async def _watch_signals(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        with anyio.open_signal_receiver(*STOP_SIGNALS, *COUNT_SIGNALS, REOPEN_SIGNAL) as signals:
            # A lone server ends itself if an app blocks its loop through a stop (a worker's
            # supervisor kills it). The watchdog is armed by a Python-level handler, which runs
            # while the loop is blocked, and calls on the loop's own (anyio's receiver hears of
            # a signal only when the loop runs).
            lone = self.config.notify_fd is None
            watchdog = StopWatchdog(self.config.timeout_graceful_shutdown if lone else None)
            if lone:
                watchdog.chain(STOP_SIGNALS)
            task_status.started()
            try:
                await self._on_signals(signals)
            finally:
                watchdog.disarm()

    async def _on_signals(self, signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            assert self._exit is not None and self.state is not None
            if signum == REOPEN_SIGNAL:
                on_reopen_signal()  # log files (logrotate moved them)
            elif signum in COUNT_SIGNALS:
                on_count_signal(signum)  # not a supervisor: said, and ignored
            else:
                first = not self._exit.is_set()
                handover = on_stop_signal(signum, first=first)
                if first:
                    self.state.handover = handover
                    self._exit.set()
                if forces_stop(signum, first=first):
                    self._force_stop()

    def _force_stop(self) -> None:
        """Cut the graceful shutdown short (a second stop signal, or SIGQUIT at once): the
        open connections are ended now, the drain with them; lifespan shutdown still runs."""
        self._forced = True
        if self._connections_scope is not None:
            self._connections_scope.cancel()
            self._cancel_tasks()

    async def _drain(self, state: ServerState) -> None:
        """Finish in-flight requests, close idle connections and WebSockets, within the limit."""
        state.shutting_down = True
        grace = self.config.timeout_graceful_shutdown
        drain = state.drain = Drain(anyio.current_time(), handover=state.handover, grace=grace)
        self._drained = anyio.Event()
        for connection in list(state.connections):
            action = drain.at_start(
                websocket=connection.websocket is not None,
                idle=connection.idle,
                requests=connection.conn.request_count,
            )
            if action is AtDrain.GOING_AWAY:
                connection.websocket.going_away()
            elif action is AtDrain.CLOSE:
                # An idle keep-alive connection: a request its client sends at this very
                # moment is lost with it. That race is inherent (the client cannot know), and
                # HTTP clients retry a request that failed on a reused connection.
                connection.interrupt()
            elif connection.cycle is not None:
                connection.cycle.shutdown()  # an app streaming a response gets http.disconnect
        if not self._gate.open:
            return
        error_log.info("%s", draining_message(self._gate.open))
        with anyio.CancelScope(deadline=drain.deadline) as scope:
            await self._drained.wait()
        if scope.cancelled_caught:
            error_log.warning("%s", drain_timeout_message(self._gate.open))


def _counts(state: ServerState) -> tuple[int, int, int]:
    """Open connections, requests in flight, WebSocket sessions (for the metrics thread)."""
    connections = list(state.connections)  # copied in one step (another thread's set)
    sessions = sum(1 for c in connections if c.websocket is not None)
    return len(connections), state.in_flight, sessions


def _ip_address(address: Any) -> tuple[str, int] | None:
    if not isinstance(address, tuple) or len(address) < 2:
        return None
    if len(address) == 2 and type(address[0]) is str and type(address[1]) is int:
        return address  # IPv4 (host, port) as the socket gave it: no copy per connection
    return (str(address[0]), int(address[1]))


def run(app: Any, **options: Any) -> int:
    """Serve an ASGI app (an object or ``"module:attr"``) with :class:`Config` options."""
    return Server(Config(app=app, **options)).run()


async def _readable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """Wait until the listening socket ``fd`` has a connection to accept."""
    readable = loop.create_future()
    loop.add_reader(fd, _wake, readable)
    try:
        await readable
    finally:
        loop.remove_reader(fd)


def _wake(readable: asyncio.Future[None]) -> None:
    if not readable.done():
        readable.set_result(None)
