"""One accepted socket: its selector interest, output buffer, deadlines, TLS handshake and close.

The loop thread owns the socket's registration in the selector and closes it. A worker thread
running the application writes through :meth:`Channel.write` (trying a direct non-blocking send
first). Everything here runs with ``Channel.lock`` held, and nothing holds that lock across
blocking I/O: the loop takes it for every event of the socket. A worker that needs the loop (a
new interest, a close) queues the socket with :meth:`Loop.call_soon
<tether_threaded._loop.Loop.call_soon>`. What the bytes mean is the subclass's
(:class:`tether_threaded._connection.Connection`) and the WebSocket session's.
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
from typing import Any, cast

from tether.http1 import ServerConnection
from tether.serving_cycle import RULES
from tether.serving_driver import ConnectionDriver, Next
from tether_threaded._input import ClientDisconnected
from tether_threaded._ports import Handler, Host

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE
#: Bytes asked of one ``recv`` call.
RECV_SIZE = 64 * 1024
#: Queued response bytes above which a writing worker waits for the client to catch up (and a
#: WebSocket stops reading frames); the bytes below which they resume. Both servers' numbers.
OUT_HIGH = RULES.write_high
OUT_LOW = RULES.write_low

_log = logging.getLogger("tether.error")


class Phase(enum.Enum):
    """What the bytes on a connection currently mean."""

    HANDSHAKE = "HANDSHAKE"  # TLS handshake in progress
    HTTP = "HTTP"
    WEBSOCKET = "WEBSOCKET"
    LINGER = "LINGER"  # our side is shut down; draining the client's last bytes
    CLOSED = "CLOSED"


class Channel:
    """The socket side of one accepted connection."""

    __slots__ = (
        "base_environ",
        "broken",
        "client",
        "closed",
        "closing",
        "cond",
        "core",
        "counting",
        "driver",
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
        "sock",
        "timer_at",
        "tls",
        "want",
        "ws",
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
        #: A streamed response waiting, without its worker, for the client to read: resumed on
        #: a worker once ``outbuf`` drains below OUT_LOW, or when the connection closes.
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
        self.ws: Handler | None = None
        #: Bytes read from and written to the client (decrypted ones under TLS), counted here
        #: (two integer additions, under the lock) and added to the metrics when the
        #: connection ends (``Loop.forget``); a scrape adds those of the open connections.
        #: Without --metrics-port nothing reads them, so they are not counted.
        self.counting = loop.metrics is not None
        self.received = 0
        self.sent = 0

    @property
    def eof(self) -> bool:
        """The client ended its side of the connection."""
        return self.driver.eof

    # -- what the subclass says about HTTP ---------------------------------------------------------

    def drained(self, now: float) -> None:
        """The output fell to OUT_LOW or less: a request held back may go on."""
        raise NotImplementedError

    # -- selector interest ----------------------------------------------------------------------

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

    def interest_changed(self) -> None:
        """``want`` changed: sync it now on the loop thread, else ask the loop to (any thread)."""
        if self.loop.in_loop():
            self.sync()
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

    # -- timers ---------------------------------------------------------------------------------

    def schedule(self, now: float) -> None:
        """Make sure the loop's timer heap looks at this connection by its next deadline."""
        deadline = self.io_deadline
        if self.phase is Phase.HTTP:
            other = self.driver.deadline()
        elif self.phase is Phase.WEBSOCKET and self.ws is not None:
            other = self.ws.rules.deadline()
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
        elif self.phase is Phase.WEBSOCKET and self.ws is not None:
            self.ws.on_timer(now)  # reschedules or closes
        elif self.phase is Phase.HTTP and self.driver.timeout(now) is Next.CLOSE:
            self.close_with_output(now)
        else:
            self.schedule(now)

    # -- reading --------------------------------------------------------------------------------

    def on_readable(self, now: float) -> None:
        """The socket is readable (loop thread). The HTTP phase is the subclass's: it overrides
        this method, and calls it for the other phases."""
        phase = self.phase
        if phase is Phase.WEBSOCKET and self.ws is not None:
            self.ws.on_readable(now)
        elif phase is Phase.HANDSHAKE:
            self._handshake(now)
        elif phase is Phase.LINGER:
            data = self.recv()
            if data is None:
                return
            self.lingered += len(data)
            if not data or self.lingered > RULES.linger_bytes:
                self.close_now()

    def recv(self) -> bytes | None:
        """One ``recv``: bytes (``b""`` at EOF, noted in ``eof``), or None when there is nothing
        (or it broke)."""
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

    # -- writing --------------------------------------------------------------------------------

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
            now = time.monotonic()
            self.io_deadline = now + self.loop.config.timeout_write
            self.interest_changed()
            if self.loop.in_loop():
                self.schedule(now)

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
            self.drained(now)
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
        if self.ws is not None and self.ws.rules.held is not None:
            self.ws.resume_reading()

    def close_with_output(self, now: float) -> None:
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
        self.close_soon(now)

    # -- TLS ------------------------------------------------------------------------------------

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

    # -- closing --------------------------------------------------------------------------------

    def close_soon(self, now: float) -> None:
        """Close once everything queued is sent (any thread)."""
        if self.closing:
            return
        self.closing = True
        self.cond.notify_all()
        if self.outbuf:
            return  # on_writable finishes the close
        if self.loop.in_loop():
            self._finish_close(now)
        else:
            self.loop.call_soon(self, wake=True)

    def break_(self) -> None:
        """The socket failed: drop what is queued and close (any thread)."""
        self.broken = True
        self.closing = True
        self.outbuf.clear()
        self.cond.notify_all()
        if self.loop.in_loop():
            self.close_now()
        else:
            self.loop.call_soon(self, wake=True)

    def _finish_close(self, now: float) -> None:
        if self.broken or self.tls or self.phase is not Phase.HTTP or self.eof:
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
        self.closed_now()
        self._unpark()  # a parked response's next write fails and its worker cleans up
        self.cond.notify_all()  # wakes writers, and a WebSocket application in receive()
        self.loop.forget(self)

    def closed_now(self) -> None:
        """The socket was just closed: drop what the subclass holds for a request."""

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


__all__ = ["OUT_HIGH", "OUT_LOW", "READ", "RECV_SIZE", "WRITE", "Channel", "Phase"]
