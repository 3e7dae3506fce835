"""One client connection in its HTTP phase: requests in, bodies gathered, responses done.

The socket's side (interest, output, deadlines, TLS, closing) is :class:`~._socket.Channel`'s.
The loop reads each request body whole before the request is dispatched, so no worker ever waits
on a client's bytes; under ``--request-body stream`` the request is dispatched at its head and
the loop passes the body on as it reads it (:class:`~._input.StreamedBody`). Every protocol decision (framing, keep-alive, limits, timeouts, error
responses) is the core's, and what each of its answers means for the server is
:class:`tether.serving_driver.ConnectionDriver`'s. As in the channel, everything here runs with
the connection's lock held.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from tether.errors import ProtocolError
from tether.http1 import Data, EndOfMessage, Request
from tether.serving_driver import Next
from tether_threaded._input import BodyBuffer, ClientDisconnected, StreamedBody
from tether_threaded._ports import Host, Job
from tether_threaded._socket import OUT_HIGH, READ, Channel, Phase


class Connection(Channel):
    """The server side of one accepted socket."""

    __slots__ = ("body", "busy", "exchange", "held", "streamed", "want_read")

    def __init__(  # noqa: PLR0917
        self,
        loop: Host,
        sock: socket.socket,
        base_environ: dict[str, Any],
        client: str,
        now: float,
        tls: bool,
    ) -> None:
        super().__init__(loop, sock, base_environ, client, now, tls)
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

    def on_readable(self, now: float) -> None:
        """The socket is readable (loop thread): feed the core, then take its events (outside
        the HTTP phase, :meth:`Channel.on_readable <._socket.Channel.on_readable>` reads)."""
        if self.phase is not Phase.HTTP:
            super().on_readable(now)
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
            self.close_with_output(now)
            return
        self.pump(now)

    def _read_again(self) -> None:
        """The core asks for bytes: watch the socket for them (any thread)."""
        self.want_read = True
        if not self.want & READ:
            self.want |= READ
            self.interest_changed()

    def pump(self, now: float) -> None:
        """Take events out of the core until it needs bytes or waits for the application.

        Runs on the loop after a read, and on a worker after a response (pipelined requests).
        A request's body is gathered here; the request goes to a worker once it is complete.
        """
        driver = self.driver
        while not self.closing:
            event = driver.next_event(now)
            kind = type(event)
            # Each request has one head and one end, and any number of Data events between.
            if kind is Request:
                # A request head: its environ is built now, then its body (if any) gathered.
                try:
                    exchange = self.loop.make_exchange(self, event)  # type: ignore[arg-type]
                except ProtocolError as exc:
                    driver.refuse(exc)
                    self.close_with_output(now)
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
                    self.close_with_output(now)
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
                self.close_with_output(now)
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

    def drained(self, now: float) -> None:
        """The output drained to OUT_LOW: a request held back goes on."""
        if self.held and not self.closing:
            self.held = False
            self._dispatch(now)

    def _dispatch(self, now: float) -> None:
        """The request is complete: hand it to the loop, unless the client pipelines requests
        without reading the answers (a worker would only wait on it). Then it is ``held`` here
        until the output drains (:meth:`drained`), or the write timeout closes the connection."""
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
        step = self.driver.finish(now, closing=self.loop.draining and not self.loop.handover)
        if step is Next.CLOSE:
            self.close_soon(now)
        elif step is Next.READ:
            # The common case: nothing pipelined. The socket is still watched (nothing came
            # while the response was made). The only deadline is now the keep-alive one, which
            # an earlier timer entry may cover.
            self.want_read = True
            if not self.want & READ:
                self._read_again()
            timer_at = self.timer_at
            if timer_at is None or timer_at > now + self.loop.limits.keep_alive_timeout:
                self.schedule(now)
        else:
            self.pump(now)

    def closed_now(self) -> None:
        """The socket closed: free a body being gathered."""
        if self.body is not None:
            self.body.discard()
            self.body = None
        # A reader of an unfinished streamed body, woken by close_now, sees ``closing`` and
        # raises: a cut body must not read as a whole one.
        self.streamed = None
        self.exchange = None


__all__ = ["OUT_HIGH", "Connection"]
