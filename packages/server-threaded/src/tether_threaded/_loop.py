"""The selectors loop: one thread owns every socket; a bounded pool of workers runs the app.

The loop accepts, reads, writes and fires timers, handling every event of one ``select`` call in
one pass. Workers never touch the selector: they queue a connection with :meth:`Loop.call_soon`
and the loop applies the change. A request reaches a worker only once its body is complete, and
a WebSocket upgrade runs on a thread of its own (``Config.limit_websockets``), so slow clients
and long sessions never take the pool's threads.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import itertools
import logging
import selectors
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from threading import get_ident
from typing import Any

from tether.http1 import Request
from tether.serving import ConnectionGate, split_target
from tether.serving_drain import AtDrain, Drain
from tether.serving_screen import Screen
from tether.serving_wsgi import Environ, WSGIApp, gathered_body, server_environ
from tether_server.accesslog import peer_text
from tether_server.binding import ACCEPT_PAUSE, refuse_new_connections
from tether_server.server_metrics import byte_totals
from tether_server.startup import drain_timeout_message, draining_message
from tether_server.wsgi_body import BodyBuffer, SpoolBudget
from tether_threaded._config import Config
from tether_threaded._connection import Connection
from tether_threaded._input import ClientDisconnected
from tether_threaded._pool import STALL, Pool
from tether_threaded._transport import READ, WRITE, Phase, Transport
from tether_threaded._wsgi import Exchange

#: Longest sleep of the loop: deadlines set by workers are noticed within this many seconds.
TICK = 0.25
#: Connections accepted per listener per pass, so a flood cannot starve other sockets.
ACCEPT_BATCH = 64
#: ``accept`` errors that say the process, not the client, lacks something.
_OUT_OF_RESOURCES = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))

_log = logging.getLogger("tether.error")


@dataclass(frozen=True, slots=True, eq=False)
class _Listener:
    sock: socket.socket
    ssl_context: ssl.SSLContext | None
    base_environ: dict[str, Any]


def _base_environ(sock: socket.socket, tls: bool, config: Config) -> Environ:
    if sock.family == socket.AF_UNIX:
        name, port = "localhost", "443" if tls else "80"
    else:
        name, port = sock.getsockname()[:2]
    return server_environ(str(name), str(port), config.root_path, tls, config.multiprocess)


def _lost(conn: Transport) -> None:
    """A bug surfaced while handling ``conn``: log it and drop the connection, keep serving."""
    _log.exception("%s: unexpected error; closing the connection", conn.client)
    conn.close_now()


class Loop:
    """The event loop of one server: sockets, timers, admission and the worker pool."""

    def __init__(
        self,
        app: WSGIApp,
        config: Config,
        listeners: list[socket.socket],
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        # What can refuse the options comes first: nothing to release yet if it raises.
        self.gate = ConnectionGate(config.limit_connections, config.limit_connections_low)
        self.app = app
        self.config = config
        self.limits = config.limits()
        self.selector: selectors.BaseSelector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._pending: deque[Transport | None] = deque()
        self._wake_pending = False
        self._timers: list[tuple[float, int, Connection]] = []
        #: Timer entries of connections closed since the heap was last swept.
        self._dead_timers = 0
        self._seq = itertools.count()
        self.conns: set[Connection] = set()
        self._listeners = [
            _Listener(sock, ssl_context, _base_environ(sock, ssl_context is not None, config))
            for sock in listeners
        ]
        self._listening = False
        #: Out of descriptors: when to accept again (None: not paused).
        self._accept_retry: float | None = None
        #: Whose X-Forwarded-For/-Proto to believe (None: --no-proxy-headers).
        self.proxies = config.trusted_proxies()
        self._count_lock = threading.Lock()
        self._in_flight = 0
        self._max_in_flight = config.max_in_flight()
        #: Health probes and CONNECT, answered before admission.
        self.screen = Screen(
            config.health_path_prefix, self._max_in_flight, config.limit_connections
        )
        #: Called with ``now`` on every pass of the loop: the supervisor's heartbeat.
        self.heartbeat: Callable[[float], None] | None = None
        #: Called once when a graceful shutdown begins (a lone server's ``STOPPING=1``).
        self.on_stopping: Callable[[], None] | None = None
        self._websockets = 0
        self._max_websockets = config.limit_websockets
        #: Most body bytes the loop gathers for one request.
        self.body_cap = config.body_cap()
        self.spool = SpoolBudget(config.limit_spool)  # bytes of gathered bodies on disk
        self.thread_id: int | None = None
        #: A SIGHUP shutdown: idle keep-alive connections stay open until their next request
        #: (answered with ``Connection: close``) or timeout, so none sent meanwhile is lost.
        self.handover = False
        #: A graceful shutdown's rules for each connection, once it has begun (None: serving).
        self.drain: Drain | None = None
        self._force = False
        self.pool: Pool | None = None
        self._batch: list[Callable[[], None]] = []
        self.access_log = config.access_log
        #: Request ids, trace ids, added response fields (None: all off).
        self.tagger = config.tagger()
        #: Whether responses carry a ``Date`` field; the ``Server`` field (None: left out).
        self.date_header = config.date_header
        self.server_header = config.server_header_pair()
        #: --limit-max-requests: each request's head is counted as it arrives (None: no limit).
        budget = config.request_budget
        self.request_budget = budget if budget.limit is not None else None
        self.make_exchange: Callable[[Connection, Request], Exchange] = partial(Exchange, self)
        #: --metrics-port (None: off); its gauges are read from here when scraped.
        self.metrics = config.metrics
        if self.metrics is not None:
            self.metrics.watch(lambda: (len(self.conns), self._in_flight, self._websockets))
            self.metrics.watch_bytes(lambda: byte_totals(list(self.conns)))

    # -- cross-thread requests ------------------------------------------------------------------

    def in_loop(self) -> bool:
        """Whether the caller runs on the loop thread."""
        return get_ident() == self.thread_id

    def call_soon(self, conn: Transport | None, wake: bool) -> None:
        """Ask the loop to service ``conn`` (None: begin shutdown) on its next pass."""
        self._pending.append(conn)
        # Append first, then test the flag: the loop clears the flag before draining the queue,
        # so an entry is either seen by this pass or followed by a wake-up.
        if wake and not self._wake_pending:
            self._wake_pending = True
            # A full pipe already wakes the loop; a closed one means it has stopped.
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    def request_shutdown(self) -> None:
        """Begin a graceful shutdown (a second call forces it). Safe from any thread or signal."""
        self.call_soon(None, wake=True)

    def push_timer(self, at: float, conn: Connection) -> None:
        """Look at ``conn`` at time ``at`` (loop thread)."""
        heapq.heappush(self._timers, (at, next(self._seq), conn))

    # -- admission --------------------------------------------------------------------------------

    def dispatch(
        self, conn: Connection, exchange: Exchange, body: BodyBuffer | None, now: float
    ) -> None:
        """A request is complete (``conn``'s lock held): answer a health probe, refuse it with
        503 at the admission limits, or hand it with its body to a worker (an upgrade: to a
        thread of its own)."""
        request = exchange.request
        screen = self.screen
        health = None
        # Without probes only CONNECT is answered here: no look at the target per request.
        if screen.prefix or request.method == b"CONNECT":
            probe = screen.probe(split_target(request.target)[0])
            health = screen.answer(request.method, probe, self._status)
        if health is not None:
            # A probe's answer or CONNECT's 501, kept alive (past --limit-concurrency too).
            out = exchange.cycle.canned(*health)
        elif self.admit(upgrade := exchange.upgrade is not None):
            if body is not None:
                exchange.input = body.stream()
                exchange.gathered = body  # released once the body is closed
                gathered_body(exchange.environ, exchange.input, body.size)
            if upgrade:
                # A WebSocket application blocks its thread for the whole session.
                thread = threading.Thread(target=exchange.run, name="tether-websocket", daemon=True)
                try:
                    thread.start()
                except RuntimeError:  # the system refused a thread: give the budget back
                    self.release(upgrade=True)
                    raise
            elif get_ident() == self.thread_id:
                self._batch.append(exchange.run)  # resume() on the loop thread, without its call
            else:
                self.resume(exchange.run)
            return
        else:
            if upgrade:
                full = "WebSocket sessions at --limit-websockets"
            else:
                full = "all workers busy and the queue is full"
            _log.warning("%s: %s; answering 503", conn.client, full)
            # --retry-after-window's 503, which closes the connection.
            out = exchange.cycle.canned(*self.config.retry_after.response())
            if self.metrics is not None:
                self.metrics.shed("websockets" if upgrade else "concurrency")
        if body is not None:
            body.discard()
        if self.metrics is not None:
            exchange.record(self.metrics)
        try:
            if out:
                conn.write(out, wait=False)
        except ClientDisconnected:
            return
        if health is not None:
            conn.response_done(now)
        else:
            conn.close_soon()

    def admit(self, upgrade: bool) -> bool:
        """Count a request in, unless the server is at ``limit_concurrency`` (an upgrade: a
        WebSocket session, unless ``limit_websockets`` are running)."""
        with self._count_lock:
            if not upgrade:
                if self._in_flight < self._max_in_flight:
                    self._in_flight += 1
                    return True
            elif self._websockets < self._max_websockets:
                self._websockets += 1
                return True
            return False

    def release(self, upgrade: bool) -> None:
        """Count a finished request (an upgrade: its WebSocket thread) out."""
        with self._count_lock:
            if not upgrade:
                self._in_flight -= 1
            else:
                self._websockets -= 1

    def _status(self) -> tuple[bool, int, int]:
        """What a health probe reports: draining, requests in flight, open connections."""
        with self._count_lock:
            in_flight = self._in_flight
        return self.drain is not None, in_flight, len(self.conns)

    def resume(self, job: Callable[[], None]) -> None:
        """Queue a job for the workers: a request, or the rest of a parked response. On the loop
        thread it waits for the end of the pass, so workers do not take the GIL between the
        loop's ``recv`` calls."""
        if get_ident() == self.thread_id:
            self._batch.append(job)
        else:
            assert self.pool is not None
            self.pool.submit(job)

    def forget(self, conn: Connection) -> None:
        """A connection closed (loop thread)."""
        if conn in self.conns:
            if self.metrics is None:
                self.conns.discard(conn)
            else:
                # Its byte counts join the loop thread's cell as it leaves the open set.
                forget = partial(self.conns.discard, conn)
                self.metrics.fold(self.metrics.cell(), conn.received, conn.sent, forget)
            if self.gate.closed() and self.drain is None:
                self._listen(True)
        if conn.timer_at is not None:
            # Its heap entries would keep it alive until their deadlines: sweep the heap once
            # closed connections there outnumber open ones.
            self._dead_timers += 1
            timers = self._timers
            if self._dead_timers > len(self.conns):
                timers[:] = [entry for entry in timers if not entry[2].closed]
                heapq.heapify(timers)
                self._dead_timers = 0

    # -- the loop ---------------------------------------------------------------------------------

    def _listen(self, on: bool) -> None:
        if on == self._listening:
            return
        for listener in self._listeners:
            if on:
                self.selector.register(listener.sock, READ, listener)
            else:
                self.selector.unregister(listener.sock)
        self._listening = on

    def run(self) -> None:
        """Serve until a shutdown completes. Call from the thread that owns the loop."""
        self.thread_id = threading.get_ident()
        pool = self.pool = Pool(self.config.threads)
        self.selector.register(self._wake_r, READ, None)
        self._listen(True)
        select = self.selector.select
        monotonic = time.monotonic
        timers = self._timers
        batch = self._batch
        queue_jobs = pool.queue
        kick = pool.kick
        work_waiting = False
        try:
            while True:
                drain = self.drain
                if drain is not None and (
                    not self.conns or self._force or drain.overdue(monotonic())
                ):
                    if self.conns and not self._force:
                        _log.warning("%s", drain_timeout_message(len(self.conns)))
                    break
                timeout = STALL if work_waiting else TICK
                if timers:
                    wait = timers[0][0] - monotonic()
                    if wait < timeout:
                        timeout = wait if wait > 0.0 else 0.0
                events = select(timeout)
                now = monotonic()
                for key, mask in events:
                    target = key.data
                    if type(target) is Connection:
                        with target.lock:
                            if target.closed:
                                continue
                            try:
                                if mask & READ:
                                    target.on_readable(now)
                                if mask & WRITE and not target.closed:
                                    target.on_writable(now)
                            except Exception:
                                _lost(target)
                    elif target is None:
                        self._drain_wake()
                    else:
                        self._accept(target, now)
                if self._pending:
                    self._run_pending(now)
                if timers and timers[0][0] <= now:
                    self._run_timers(now)
                if self.drain is not None and self.drain.fresh_due(now):
                    self._close_fresh()
                if batch:
                    queue_jobs(batch)
                    batch.clear()
                work_waiting = kick(now)
                if self._accept_retry is not None and now >= self._accept_retry:
                    self._accept_retry = None
                    if self.gate.accepting and self.drain is None:
                        self._listen(True)
                if self.heartbeat is not None:
                    self.heartbeat(now)
        finally:
            self._cleanup()

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass
        self._wake_pending = False

    def _run_pending(self, now: float) -> None:
        pending = self._pending
        for _ in range(len(pending)):
            conn = pending.popleft()
            if conn is None:
                self._begin_shutdown(now)
                continue
            with conn.lock:
                try:
                    conn.service(now)
                except Exception:
                    _lost(conn)

    def _run_timers(self, now: float) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now:
            at, _, conn = heapq.heappop(timers)
            with conn.lock:
                if conn.timer_at != at:
                    continue  # superseded by an earlier deadline
                conn.timer_at = None
                try:
                    conn.on_timer(now)
                except Exception:
                    _lost(conn)

    def _accept(self, listener: _Listener, now: float, final: bool = False) -> None:
        """Accept up to ACCEPT_BATCH connections while listening; ``final`` (a stop): every
        connection queued, whatever the gate says (see _begin_shutdown)."""
        taken = 0
        while final or (taken < ACCEPT_BATCH and self._listening):
            taken += 1
            try:
                sock, address = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # the connections we have are still served
                if exc.errno in _OUT_OF_RESOURCES:
                    _log.error("accept failed: %s; pausing accepting for %g s", exc, ACCEPT_PAUSE)
                    self._listen(False)
                    self._accept_retry = now + ACCEPT_PAUSE
                else:
                    _log.error("accept failed: %s", exc)
                return
            environ = listener.base_environ.copy()
            try:
                sock.setblocking(False)
                if sock.family in (socket.AF_INET, socket.AF_INET6):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    host, port = address[:2]
                    environ["REMOTE_ADDR"] = host
                    environ["REMOTE_PORT"] = str(port)
                    client = peer_text(host, port)
                else:
                    client = "unix"
                if listener.ssl_context is not None:
                    sock = listener.ssl_context.wrap_socket(
                        sock, server_side=True, do_handshake_on_connect=False
                    )
                conn = Connection(self, sock, environ, client, now)
            except OSError as exc:
                # The client reset before we set the socket up: nothing to serve.
                _log.debug("dropping a connection that failed during setup: %s", exc)
                sock.close()
                continue
            self.conns.add(conn)
            if self.metrics is not None:
                self.metrics.connection()
            if self.gate.opened():
                self._listen(False)
            with conn.lock:
                conn.sync()
                conn.schedule(now)

    def _begin_shutdown(self, now: float) -> None:
        if self.drain is not None:
            self._force = True
            return
        grace = self.config.timeout_graceful_shutdown
        drain = self.drain = Drain(now, handover=self.handover, grace=grace)
        if self.on_stopping is not None:
            self.on_stopping()
        self._listen(False)
        for listener in self._listeners:
            # Queued connections first (their connect() succeeded; the last close would reset
            # them), served by the drain below; new ones are refused from now.
            refuse_new_connections(listener.sock)
            self._accept(listener, now, final=True)
            listener.sock.close()  # refuse new connections instead of leaving them in the backlog
        for conn in list(self.conns):
            with conn.lock:
                # A TLS handshake under way goes on (bounded by its timeout); a busy
                # connection's response carries Connection: close (_wsgi).
                action = drain.at_start(
                    websocket=conn.phase is Phase.WEBSOCKET,
                    idle=conn.phase is Phase.HTTP and not conn.busy,
                    requests=conn.core.request_count,
                )
                if action is AtDrain.CLOSE:
                    # Idle keep-alive: a request sent at this very moment is lost with it, an
                    # inherent race (clients retry a request failed on a reused connection).
                    conn.close_soon()
                elif action is AtDrain.GOING_AWAY:
                    conn.ws_close(now)  # no code: the session's going away (1001)
        if self.conns:
            _log.info("%s", draining_message(len(self.conns)))

    def _close_fresh(self) -> None:
        """Draining, past RULES.fresh_grace_seconds: close connections that sent nothing."""
        for conn in list(self.conns):
            with conn.lock:
                if conn.phase is Phase.HTTP and not conn.busy and conn.core.fresh:
                    conn.close_soon()

    def _cleanup(self) -> None:
        for conn in list(self.conns):
            with conn.lock:
                conn.close_now()
        self._listen(False)
        for listener in self._listeners:
            listener.sock.close()
        self.selector.close()
        self._wake_r.close()
        self._wake_w.close()
        if self.pool is not None:
            self.pool.stop(timeout=self._pool_grace(time.monotonic()))

    def _pool_grace(self, now: float) -> float:
        """How long to wait for worker threads still in the app: at most 2 s, and never past
        --timeout-graceful-shutdown or a second signal. A thread whose connection is closed
        can deliver nothing, and the operator's stop timeout (systemd, Kubernetes) is set from
        the grace: waiting 2 s past it made every stop with a stuck request overrun it."""
        drain = self.drain
        if drain is None:
            return 2.0  # the loop failed: not a shutdown the operator timed
        if self._force:
            return 0.0
        return max(0.0, min(2.0, drain.deadline - now))


__all__ = ["Loop"]
