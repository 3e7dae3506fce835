"""One accepted socket: its selector interest, output, deadlines, TLS handshake, close, and the
HTTP requests (or WebSocket session) on it.

The loop thread owns the socket's registration in the selector and closes it; a worker writes
through :meth:`Connection.write` (a direct non-blocking send first). Everything here runs with
``Connection.lock`` held, and nothing holds that lock across blocking I/O: the loop takes it for
every event of the socket. A worker that needs the loop (a new interest, a close) queues the
connection with ``Loop.call_soon``. The loop gathers each request body before the request is
dispatched (under ``--request-body stream`` it passes the body on as it reads it). Every
protocol decision is the core's, read through :class:`tether.serving_driver.ConnectionDriver`.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, cast

from tether import websocket as ws_core
from tether.errors import ProtocolError
from tether.http1 import Data, EndOfMessage, Request, ServerConnection
from tether.limits import Limits
from tether.serving import TrustedProxies
from tether.serving_cycle import RULES
from tether.serving_drain import Drain
from tether.serving_driver import ConnectionDriver, Next
from tether.serving_websocket import WebSocketSession
from tether.serving_wsgi import WSGIApp
from tether_server.recycling import RequestBudget
from tether_server.server_metrics import ServerMetrics
from tether_server.tagging import Tagger
from tether_server.wsgi_body import BodyBuffer
from tether_threaded._config import Config
from tether_threaded._input import ClientDisconnected, StreamedBody

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE
#: Bytes asked of one ``recv`` call.
RECV_SIZE = 64 * 1024
#: Queued response bytes above which a writing worker waits for the client to catch up (and a
#: WebSocket stops reading frames); the bytes below which they resume. Both servers' numbers.
OUT_HIGH = RULES.write_high
OUT_LOW = RULES.write_low

_log = logging.getLogger("tether.error")


class Job(Protocol):
    """One request as its connection sees it, from its head until the loop dispatches it."""

    @property
    def has_body(self) -> bool:
        """Whether the request has a body to gather before the application runs."""

    def stream_body(self, source: Connection) -> StreamedBody:
        """``--request-body stream``: the application's ``wsgi.input``, fed by the loop."""


class Host(Protocol):
    """The loop as connections and exchanges see it (:class:`~._loop.Loop`): a protocol, so
    that no module imports back up to :mod:`._loop`."""

    config: Config
    limits: Limits
    selector: selectors.BaseSelector
    app: WSGIApp
    body_cap: int | None
    draining: bool
    #: The graceful shutdown's rules, once it has begun (:class:`tether.serving_drain.Drain`).
    drain: Drain | None
    access_log: bool
    metrics: ServerMetrics | None
    tagger: Tagger | None
    proxies: TrustedProxies | None
    date_header: bool
    server_header: tuple[bytes, bytes] | None
    request_budget: RequestBudget | None

    @property
    def make_exchange(self) -> Callable[[Connection, Request], Job]:
        """Builds the :class:`Job` of a request head on a connection."""

    def in_loop(self) -> bool: ...
    def call_soon(self, conn: Connection | None, wake: bool) -> None: ...
    def push_timer(self, at: float, conn: Connection) -> None: ...
    def release(self, upgrade: bool) -> None: ...
    def dispatch(
        self, conn: Connection, exchange: Any, body: BodyBuffer | None, now: float
    ) -> None: ...
    def resume(self, job: Callable[[], None]) -> None: ...
    def forget(self, conn: Connection) -> None: ...


class Phase(enum.Enum):
    """What the bytes on a connection currently mean."""

    HANDSHAKE = "HANDSHAKE"  # TLS handshake in progress
    HTTP = "HTTP"
    WEBSOCKET = "WEBSOCKET"
    LINGER = "LINGER"  # our side is shut down; draining the client's last bytes
    CLOSED = "CLOSED"


class Connection:
    """The server side of one accepted socket."""

    __slots__ = (
        "base_environ",
        "body",
        "broken",
        "busy",
        "client",
        "closed",
        "closing",
        "cond",
        "core",
        "counting",
        "driver",
        "exchange",
        "held",
        "io_deadline",
        "lingered",
        "lock",
        "loop",
        "outbuf",
        "parked",
        "phase",
        "received",
        "registered",
        "sending",
        "sent",
        "session",
        "sock",
        "streamed",
        "timer_at",
        "tls",
        "want",
        "want_read",
    )

    def __init__(  # noqa: PLR0917
        self,
        loop: Host,
        sock: socket.socket,
        base_environ: dict[str, Any],
        client: str,
        now: float,
        tls: bool,
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.base_environ = base_environ
        #: "host:port" of the peer, for logs.
        self.client = client
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.core = ServerConnection(limits=loop.limits, now=now)
        self.driver = ConnectionDriver(self.core, loop.body_cap)
        self.tls = tls
        self.phase = Phase.HANDSHAKE if tls else Phase.HTTP
        #: Selector events wanted, and those currently registered (the loop syncs them).
        self.want = READ
        self.registered = 0
        self.outbuf = bytearray()
        #: A streamed response parked on a slow reader: resumed on a worker below OUT_LOW.
        self.parked: Callable[[], None] | None = None
        #: A worker is in ``os.sendfile`` on the socket without the lock: ``close_now`` must
        #: leave closing the descriptor to it, or the number could be reused under it.
        self.sending = False
        #: Close once ``outbuf`` is flushed; no more writes are accepted.
        self.closing = False
        #: The socket failed: close without flushing.
        self.broken = False
        self.closed = False
        #: When the loop's timer heap will next look at this connection.
        self.timer_at: float | None = None
        #: A deadline of our own: TLS handshake, a stalled write, or the lingering close.
        self.io_deadline: float | None = (now + loop.config.timeout_tls_handshake) if tls else None
        self.lingered = 0
        #: The WebSocket session's rules (the core's), once upgraded.
        self.session: WebSocketSession | None = None
        #: Bytes read and written (decrypted under TLS), counted only with --metrics-port.
        self.counting = loop.metrics is not None
        self.received = 0
        self.sent = 0
        #: The core's last answer was NEED_DATA: the next readable event may be read.
        self.want_read = True
        #: A request is in progress (from its head until its response is complete).
        self.busy = False
        #: The body being gathered, and the request it belongs to, until it is dispatched.
        self.body: BodyBuffer | None = None
        self.exchange: Job | None = None
        #: ``--request-body stream``: the body the running application reads.
        self.streamed: StreamedBody | None = None
        #: The complete request waits for the client to read what was sent before (OUT_HIGH).
        self.held = False

    # -- selector interest and timers -------------------------------------------------------------

    def sync(self) -> None:
        """Make the selector registration match ``want`` (loop thread)."""
        want = 0 if self.closed else self.want
        if want == self.registered:
            return
        selector = self.loop.selector
        if self.registered == 0:
            selector.register(self.sock, want, self)
        elif want == 0:
            selector.unregister(self.sock)
        else:
            selector.modify(self.sock, want, self)
        self.registered = want

    def apply(self) -> None:
        """``want`` or closing changed: :meth:`service` now on the loop thread, else ask the
        loop to (any thread)."""
        if self.loop.in_loop():
            self.service(time.monotonic())
        else:
            self.loop.call_soon(self, wake=True)

    def service(self, now: float) -> None:
        """The loop's answer to :meth:`Loop.call_soon`: apply interest, timers and closing."""
        if self.closed:
            return
        if self.broken:
            self.close_now()
        elif self.closing and not self.outbuf and self.phase is not Phase.LINGER:
            self._finish_close(now)
        else:
            self.sync()
            self.schedule(now)

    def schedule(self, now: float) -> None:
        """Make sure the loop's timer heap looks at this connection by its next deadline."""
        deadline = self.io_deadline
        if self.phase is Phase.HTTP:
            other = self.driver.deadline()
        elif self.phase is Phase.WEBSOCKET and self.session is not None:
            other = self.session.deadline()
        else:
            other = None
        if other is not None and (deadline is None or other < deadline):
            deadline = other
        if deadline is None or (self.timer_at is not None and self.timer_at <= deadline):
            return
        if self.loop.in_loop():
            self.timer_at = deadline
            self.loop.push_timer(deadline, self)
        else:
            # No wake-up: the loop never sleeps longer than its tick, and deadlines set from a
            # worker (keep-alive after a response) are seconds away.
            self.loop.call_soon(self, wake=False)

    def on_timer(self, now: float) -> None:
        """A deadline may have passed (loop thread)."""
        if self.closed:
            return
        if self.io_deadline is not None and self.io_deadline <= now:
            if self.phase in (Phase.HTTP, Phase.WEBSOCKET):
                _log.debug("%s: the client stopped reading; closing", self.client)
            if self.loop.metrics is not None and self.phase is not Phase.LINGER:
                handshake = self.phase is Phase.HANDSHAKE
                self.loop.metrics.timeout("tls_handshake" if handshake else "write")
            self.close_now()
        elif self.phase is Phase.WEBSOCKET and self.session is not None:
            metrics = self.loop.metrics
            timer = self.session.ws.handle_timeout(now)
            if metrics is not None and timer is not None and timer is not ws_core.Timer.PING:
                metrics.timeout("websocket")
            self.ws_flush(self.session, now)  # reschedules or closes
        elif self.phase is Phase.HTTP and self.driver.timeout(now) is Next.CLOSE:
            self.close_with_output()
        else:
            self.schedule(now)

    # -- reading ----------------------------------------------------------------------------------

    def on_readable(self, now: float) -> None:
        """The socket is readable (loop thread): feed the core, then take its events."""
        phase = self.phase
        if phase is not Phase.HTTP:
            session = self.session
            if phase is Phase.WEBSOCKET and session is not None:
                # Frames are read unless the session's rules hold reading back (ws_resume).
                if self.driver.eof or not session.should_read(len(self.outbuf)):
                    self.want &= ~READ
                    self.sync()
                elif (data := self.recv()) is not None:
                    session.ws.receive_data(data, now)
                    self.ws_process(session, now)
            elif phase is Phase.HANDSHAKE:
                self._handshake(now)
            elif phase is Phase.LINGER and (data := self.recv()) is not None:
                self.lingered += len(data)
                if not data or self.lingered > RULES.linger_bytes:
                    self.close_now()
            return
        if not self.want_read or self.driver.eof:
            # Back-pressure: the core is not asking for bytes (a response is in progress, or the
            # body buffer is full), so stop watching the socket until it does.
            self.want &= ~READ
            self.sync()
            return
        data = self.recv()
        if data is None:
            return
        if self.driver.receive(data, now) is Next.CLOSE:
            self.close_with_output()
            return
        self.pump(now)

    def recv(self) -> bytes | None:
        """One ``recv``: bytes (``b""`` at EOF, noted in the driver), or None when there is
        nothing (or it broke)."""
        try:
            data = self.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return None
        except OSError as exc:
            _log.debug("%s: receive failed: %s", self.client, exc)
            self.close_now()
            return None
        if not data:
            self.driver.eof = True
        elif self.tls:
            # Decrypted bytes of the current record are invisible to the selector.
            pending = cast(ssl.SSLSocket, self.sock).pending()
            if pending:
                data += self.sock.recv(pending)
        if self.counting:
            self.received += len(data)
        return data

    def _read_again(self) -> None:
        """The core asks for bytes: watch the socket for them (any thread)."""
        self.want_read = True
        if not self.want & READ:
            self.want |= READ
            self.apply()

    def pump(self, now: float) -> None:
        """Take events out of the core until it needs bytes or waits for the application.

        Runs on the loop after a read, and on a worker after a response (pipelined requests).
        A request's body is gathered here; the request goes to a worker once it is complete.
        """
        driver = self.driver
        while not self.closing:
            event = driver.next_event(now)
            kind = type(event)
            if kind is Request:
                try:
                    exchange = self.loop.make_exchange(self, event)  # type: ignore[arg-type]
                except ProtocolError as exc:
                    driver.refuse(exc)
                    self.close_with_output()
                    return
                self.exchange = exchange
                self.busy = True
                if exchange.has_body:
                    self._start_body(exchange, now)
            elif kind is EndOfMessage:
                self.want_read = False
                if self.streamed is not None:
                    self.streamed.end()  # the request was dispatched at its head
                    return
                self._dispatch(now)
                return  # the core answers PAUSED until the response is complete
            elif kind is Data:
                streamed = self.streamed
                if streamed is not None:
                    if not streamed.feed(event.data):  # type: ignore[union-attr]
                        # The application is behind: take nothing more from the core (so no
                        # body deadline runs) and stop reading until it reads (resume_body).
                        streamed.paused = True
                        self.want_read = False
                        return
                    continue
                body = self.body
                if body is None:
                    body = self.body = BodyBuffer(self.loop.body_cap)
                try:
                    body.feed(event.data)  # type: ignore[union-attr]
                except ProtocolError as exc:
                    driver.refuse(exc)
                    self.close_with_output()
                    return
            elif event is Next.READ:
                self._read_again()
                # Re-read after every piece: the body deadline moves with the bytes received.
                self.schedule(now)
                return
            elif event is Next.WAIT:
                self.want_read = False
                return
            else:
                self.close_with_output()
                return

    def _start_body(self, exchange: Job, now: float) -> None:
        """A request head with a body arrived: stream the body to the application, or gather
        it before the application runs."""
        if self.loop.config.request_body == "stream":
            self.streamed = exchange.stream_body(self)
        else:
            self.body = BodyBuffer(self.loop.body_cap)
        # The loop reads the body now, whatever the application will do with it.
        try:
            self.write(self.driver.continue_bytes(), wait=False)
        except ClientDisconnected:
            return
        if self.streamed is not None:
            self._dispatch(now)  # the application reads the body as it comes

    def resume_body(self) -> None:
        """The application read its streamed body below the mark: go on (worker, lock held)."""
        if not self.closing:
            self.pump(time.monotonic())

    # -- requests and responses -------------------------------------------------------------------

    def _dispatch(self, now: float) -> None:
        """The request is complete: hand it to the loop, unless the client pipelines requests
        without reading the answers; then it is ``held`` until the output drains (a worker
        would only wait on the client)."""
        exchange = self.exchange
        if exchange is None:
            return
        if self.outbuf and len(self.outbuf) > OUT_HIGH:
            self.held = True
            return
        self.exchange = None
        body = self.body
        if body is not None:
            self.body = None
        self.loop.dispatch(self, exchange, body, now)

    def response_done(self, now: float) -> None:
        """The application's response is complete (worker): reuse or close the connection."""
        self.busy = False
        if self.streamed is not None:
            # What is left of an unread body is the core's to drain (or the connection ends).
            self.streamed.detach()
            self.streamed = None
        if self.closing:
            return
        # Handing over, a response begun before the shutdown (without "Connection: close")
        # leaves the connection open: the client may be sending its next request already.
        drain = self.loop.drain
        step = self.driver.finish(now, closing=drain is not None and drain.closing)
        if step is Next.CLOSE:
            self.close_soon()
        elif step is Next.READ:
            # The common case: nothing pipelined, the socket still watched. The only deadline is
            # now the keep-alive one, which an earlier timer entry may cover.
            self.want_read = True
            if not self.want & READ:
                self._read_again()
            timer_at = self.timer_at
            if timer_at is None or timer_at > now + self.loop.limits.keep_alive_timeout:
                self.schedule(now)
        else:
            self.pump(now)

    # -- writing ----------------------------------------------------------------------------------

    def _send(self, data: bytes | bytearray | memoryview) -> int:
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return 0
        except OSError as exc:
            _log.debug("%s: send failed: %s", self.client, exc)
            self.break_()
            raise ClientDisconnected(f"sending to the client failed: {exc}") from exc
        if self.counting:
            self.sent += sent
        return sent

    def write(self, data: bytes, wait: bool = True) -> None:
        """Send ``data`` now if the socket takes it, else queue it for the loop.

        With ``wait`` (workers only) block while more than :data:`OUT_HIGH` bytes are queued,
        so a slow client holds back the application instead of filling memory.
        """
        if self.closing:
            raise ClientDisconnected("the connection is closing")
        if not data:
            return
        if not self.outbuf:
            sent = self._send(data)
            if sent == len(data):
                return
            self.outbuf += memoryview(data)[sent:]
        else:
            self.outbuf += data
        self._want_write()
        if wait:
            while len(self.outbuf) > OUT_HIGH and not self.closed:
                self.cond.wait()
            if self.closed:
                raise ClientDisconnected("the connection closed while sending")

    def wait_writable(self) -> None:
        """Block until the queue is flushed and the socket is writable again (worker)."""
        self._want_write()
        while self.want & WRITE and not self.closing:
            self.cond.wait()
        if self.closing:
            raise ClientDisconnected("the connection closed while sending")

    def _want_write(self) -> None:
        """Watch for writability, the write timeout running from now (any thread)."""
        if not self.want & WRITE:
            self.want |= WRITE
            self.io_deadline = time.monotonic() + self.loop.config.timeout_write
            self.apply()  # on the loop thread, the write deadline is scheduled at once

    def on_writable(self, now: float) -> None:
        """The socket is writable (loop thread): flush the queue."""
        if self.phase is Phase.HANDSHAKE:
            self._handshake(now)
            return
        if self.outbuf:
            try:
                sent = self._send(self.outbuf)
            except ClientDisconnected:
                return
            if sent:
                del self.outbuf[:sent]
                self.io_deadline = now + self.loop.config.timeout_write
        if len(self.outbuf) <= OUT_LOW:
            if self.held and not self.closing:  # a request held back (_dispatch) goes on
                self.held = False
                self._dispatch(now)
            self._unpark()
        if not self.outbuf:
            self.want &= ~WRITE
            self.io_deadline = None
            self.sync()
            self.cond.notify_all()
            if self.closing:
                self._finish_close(now)
                return
        elif len(self.outbuf) <= OUT_HIGH:
            self.cond.notify_all()
        if self.session is not None and self.session.held is not None:
            self.ws_resume(self.session)

    def close_with_output(self) -> None:
        """The driver said CLOSE: send what it has to say (an error response), then close."""
        driver = self.driver
        _log.debug("%s: %s; closing", self.client, driver.reason)
        if self.loop.metrics is not None:
            self.loop.metrics.driver_closed(driver.reason, driver.output)
        if driver.output:
            try:
                self.write(driver.output, wait=False)
            except ClientDisconnected:
                return
        self.close_soon()

    def _handshake(self, now: float) -> None:
        try:
            cast(ssl.SSLSocket, self.sock).do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError) as exc:
            self.want = READ if isinstance(exc, ssl.SSLWantReadError) else WRITE
            self.sync()
            return
        except (ssl.SSLError, OSError) as exc:
            _log.debug("%s: TLS handshake failed: %s", self.client, exc)
            self.close_now()
            return
        self.phase = Phase.HTTP
        self.io_deadline = None
        self.want = READ
        self.sync()
        self.schedule(now)
        self.on_readable(now)

    # -- WebSocket ----------------------------------------------------------------------------------

    def ws_close(self, now: float, code: int | None = None, reason: str = "") -> None:
        """Start the WebSocket closing handshake from our side, unless it has begun: with
        ``code``, or without one as the server going away (the session's 1001)."""
        session = self.session
        if session is None or self.closing:
            return
        if session.going_away(now) if code is None else session.close(code, reason, now):
            self.ws_flush(session, now)

    def ws_process(self, session: WebSocketSession, now: float) -> None:
        """Move the core's events to the inbox (waking the application) and its bytes out;
        stop reading while the session's rules hold it back (:meth:`ws_resume` reads again)."""
        if session.take_events():
            self.cond.notify_all()
        self.ws_flush(session, now)
        if not session.should_read(len(self.outbuf)) and self.want & READ:
            self.want &= ~READ
            self.apply()

    def ws_flush(self, session: WebSocketSession, now: float) -> None:
        """Write what the WebSocket core queued; close TCP when it says so."""
        out = session.ws.bytes_to_send()
        if out:
            try:
                self.write(out, wait=False)
            except ClientDisconnected:
                return
        if session.ws.should_close_tcp:
            self.close_soon()
        else:
            self.schedule(now)

    def ws_resume(self, session: WebSocketSession) -> None:
        """The output drained or the application took messages: if reading was held back and
        may resume, take the frames the core still holds (past ``--ws-max-queue`` a read's
        later frames wait there, unparsed), then read again unless they hold it (any thread)."""
        if session.resume(len(self.outbuf)):
            self.ws_process(session, time.monotonic())
            if session.held is None and not self.driver.eof and not self.want & READ:
                self.want |= READ
                self.apply()

    # -- closing ----------------------------------------------------------------------------------

    def close_soon(self) -> None:
        """Close once everything queued is sent (any thread)."""
        if self.closing:
            return
        self.closing = True
        self.cond.notify_all()
        if not self.outbuf:  # else on_writable finishes the close
            self.apply()

    def break_(self) -> None:
        """The socket failed: drop what is queued and close (any thread)."""
        self.broken = True
        self.closing = True
        self.outbuf.clear()
        self.cond.notify_all()
        self.apply()

    def _finish_close(self, now: float) -> None:
        if self.broken or self.tls or self.phase is not Phase.HTTP or self.driver.eof:
            self.close_now()
            return
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close_now()
            return
        self.phase = Phase.LINGER
        self.want = READ
        self.io_deadline = now + RULES.linger_seconds
        self.sync()
        self.schedule(now)

    def close_now(self) -> None:
        """Close the socket at once (loop thread)."""
        if self.closed:
            return
        self.closed = True
        self.closing = True
        self.phase = Phase.CLOSED
        self.outbuf = bytearray()
        if self.registered:
            self.loop.selector.unregister(self.sock)
            self.registered = 0
        with contextlib.suppress(OSError):
            if self.sending:
                # A worker is in sendfile on this descriptor: cut the connection now, and let
                # the worker close the descriptor when the call returns (release_socket).
                self.sock.shutdown(socket.SHUT_RDWR)
            else:
                self.sock.close()
        if self.body is not None:
            self.body.discard()
            self.body = None
        # A reader of an unfinished streamed body, woken below, sees ``closing`` and raises: a
        # cut body must not read as a whole one.
        self.streamed = None
        self.exchange = None
        self._unpark()  # a parked response's next write fails and its worker cleans up
        self.cond.notify_all()  # wakes writers, and a WebSocket application in receive()
        self.loop.forget(self)

    def _unpark(self) -> None:
        """Hand a parked response back to the workers (lock held)."""
        resume, self.parked = self.parked, None
        if resume is not None:
            self.loop.resume(resume)

    def release_socket(self) -> None:
        """A worker's ``sendfile`` returned on a connection closed meanwhile: close the socket."""
        self.sending = False
        if self.closed:
            with contextlib.suppress(OSError):
                self.sock.close()


__all__ = ["OUT_HIGH", "READ", "WRITE", "Connection", "Host", "Job", "Phase"]
