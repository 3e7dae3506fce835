"""The HTTP requests (or WebSocket session) on one accepted socket, and their deadlines: a
:class:`~._transport.Transport` that feeds the core what it reads and acts on the answers, read
through :class:`tether.serving_driver.ConnectionDriver` and
:class:`tether.serving_websocket.WebSocketSession`. The loop gathers each request body before the
request is dispatched (under ``--request-body stream`` it passes the body on as it reads it).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from typing import Any, Protocol

from tether import websocket as ws_core
from tether.errors import ProtocolError
from tether.http1 import Data, EndOfMessage, Request, ServerConnection
from tether.limits import Limits
from tether.serving import TrustedProxies
from tether.serving_drain import Drain
from tether.serving_driver import ConnectionDriver, Next
from tether.serving_websocket import WebSocketSession
from tether.serving_wsgi import WSGIApp
from tether_server.recycling import RequestBudget
from tether_server.tagging import Tagger
from tether_server.tcpinfo import reset_on_close
from tether_server.wsgi_body import BodyBuffer, SpoolBudget, SpoolFull
from tether_threaded._input import ClientDisconnected, StreamedBody
from tether_threaded._transport import OUT_HIGH, READ, Owner, Phase, Transport

_log = logging.getLogger("tether.error")


class Job(Protocol):
    """One request as its connection sees it, from its head until the loop dispatches it."""

    #: Whether the request has a body to gather before the application runs.
    has_body: bool

    def stream_body(self, source: Connection) -> StreamedBody:
        """``--request-body stream``: the application's ``wsgi.input``, fed by the loop."""


class Host(Owner, Protocol):
    """The loop as connections and exchanges see it (:class:`~._loop.Loop`): a protocol, so
    that no module imports back up to :mod:`._loop`."""

    limits: Limits
    app: WSGIApp
    body_cap: int | None
    spool: SpoolBudget
    #: The graceful shutdown's rules, once it has begun (:class:`tether.serving_drain.Drain`).
    drain: Drain | None
    access_log: bool
    tagger: Tagger | None
    proxies: TrustedProxies | None
    date_header: bool
    server_header: tuple[bytes, bytes] | None
    request_budget: RequestBudget | None

    @property
    def make_exchange(self) -> Callable[[Connection, Request], Job]:
        """Builds the :class:`Job` of a request head on a connection."""

    def push_timer(self, at: float, conn: Connection) -> None: ...
    def release(self, upgrade: bool) -> None: ...
    def dispatch(
        self, conn: Connection, exchange: Any, body: BodyBuffer | None, now: float
    ) -> None: ...
    def forget(self, conn: Connection) -> None: ...


class Connection(Transport):
    """The server side of one accepted socket."""

    loop: Host

    __slots__ = (
        "base_environ",
        "body",
        "busy",
        "core",
        "driver",
        "exchange",
        "held",
        "session",
        "streamed",
        "want_read",
    )

    def __init__(
        self, loop: Host, sock: socket.socket, base_environ: dict[str, Any], client: str, now: float
    ) -> None:
        super().__init__(loop, sock, client, now)
        self.base_environ = base_environ
        self.core = ServerConnection(limits=loop.limits, now=now)
        self.driver = ConnectionDriver(self.core, loop.body_cap)
        #: The WebSocket session's rules (the core's), once upgraded.
        self.session: WebSocketSession | None = None
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

    # -- deadlines -------------------------------------------------------------------------------

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
                later = self.write_deadline(now)
                if later is not None:  # the client took something since the last look
                    self.io_deadline = later
                    self.schedule(now)
                    return
                why = "the client stopped reading" if self.pace is None else self.pace.reason(now)
                _log.debug("%s: %s; closing", self.client, why)
                reset_on_close(self.sock)
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
            if phase is not Phase.WEBSOCKET or session is None:
                super().on_readable(now)
            # Frames are read unless the session's rules hold reading back (ws_resume).
            elif self.eof or not session.should_read(len(self.outbuf)):
                self.want &= ~READ
                self.sync()
            elif (data := self.recv()) is not None:
                session.ws.receive_data(data, now)
                self.ws_process(session, now)
            return
        if not self.want_read or self.eof:
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
                    body = self.body = BodyBuffer(self.loop.body_cap, self.loop.spool)
                try:
                    body.feed(event.data)  # type: ignore[union-attr]
                except ProtocolError as exc:
                    # The server's spool is full for now: the client may try again later.
                    wait = self.loop.config.retry_after() if isinstance(exc, SpoolFull) else 0
                    driver.refuse(exc, [(b"retry-after", b"%d" % wait)] if wait else ())
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
            self.body = BodyBuffer(self.loop.body_cap, self.loop.spool)
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

    def drained(self, now: float) -> None:
        """The output fell to OUT_LOW: a request held back (:meth:`_dispatch`) goes on, or
        WebSocket reading held back by the output resumes."""
        if self.closing:
            return
        if self.held:
            self.held = False
            self._dispatch(now)
        elif (session := self.session) is not None and session.held is not None:
            self.ws_resume(session)

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
            self.notify()
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
            if session.held is None and not self.eof and not self.want & READ:
                self.want |= READ
                self.apply()

    # -- closing ----------------------------------------------------------------------------------

    def close_now(self) -> None:
        """Close the socket at once (loop thread), dropping the request in progress."""
        if self.closed:
            return
        if self.body is not None:
            self.body.discard()
            self.body = None
        # A reader of an unfinished streamed body, woken as the socket closes, sees ``closing``
        # and raises: a cut body must not read as a whole one.
        self.streamed = None
        self.exchange = None
        super().close_now()
        self.loop.forget(self)


__all__ = ["Connection", "Host", "Job"]
