"""One accepted socket's I/O: selector interest, ``recv``, the output queue and its write timeout,
the TLS handshake, and the close (lingering after HTTP). What the bytes mean, and their deadlines,
are :class:`~._connection.Connection`'s, its subclass. The loop thread owns the registration and
closes the socket; a worker writes through :meth:`Transport.write` (a direct non-blocking send
first) and queues the transport with ``Loop.call_soon`` when it needs the loop. Everything here
runs with ``Transport.lock`` held, which nothing holds across blocking I/O.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Protocol, cast

from tether.serving_cycle import RULES
from tether.serving_pace import WritePace
from tether_server.server_metrics import ServerMetrics
from tether_server.tcpinfo import acked_bytes
from tether_server.tls import PLAIN_HTTP_RESPONSE, plain_http
from tether_threaded._config import Config
from tether_threaded._input import ClientDisconnected

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE
#: Bytes asked of one ``recv`` call.
RECV_SIZE = 64 * 1024
#: Queued response bytes above which a writing worker waits for the client to catch up (and a
#: WebSocket stops reading frames); the bytes below which they resume. Both servers' numbers.
OUT_HIGH = RULES.write_high
OUT_LOW = RULES.write_low

_log = logging.getLogger("tether.error")


class Owner(Protocol):
    """The loop as a transport sees it (:class:`~._loop.Loop`)."""

    config: Config
    selector: selectors.BaseSelector
    metrics: ServerMetrics | None

    def in_loop(self) -> bool: ...
    def call_soon(self, conn: Transport | None, wake: bool) -> None: ...
    def resume(self, job: Callable[[], None]) -> None: ...


class Phase(enum.Enum):
    """What the bytes on a connection currently mean."""

    HANDSHAKE = "HANDSHAKE"  # TLS handshake in progress
    HTTP = "HTTP"
    WEBSOCKET = "WEBSOCKET"
    LINGER = "LINGER"  # our side is shut down; draining the client's last bytes
    CLOSED = "CLOSED"


class Transport:
    """The I/O of one accepted socket; what its bytes mean is the subclass's."""

    __slots__ = (
        "_cond",
        "broken",
        "client",
        "closed",
        "closing",
        "counting",
        "eof",
        "io_deadline",
        "lingered",
        "lock",
        "loop",
        "outbuf",
        "pace",
        "parked",
        "phase",
        "received",
        "registered",
        "sending",
        "sent",
        "sock",
        "taken",
        "timer_at",
        "tls",
        "want",
    )

    def __init__(self, loop: Owner, sock: socket.socket, client: str, now: float) -> None:
        self.loop = loop
        self.sock = sock
        #: "host:port" of the peer, for logs.
        self.client = client
        self.lock = threading.Lock()
        # Made by the first thread that waits (see cond): an idle connection never needs one,
        # and a Condition costs about 1 KB, a third of what an idle connection holds.
        self._cond: threading.Condition | None = None
        self.tls = tls = isinstance(sock, ssl.SSLSocket)
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
        #: The peer ended its side (a read returned no bytes).
        self.eof = False
        #: When the loop's timer heap will next look at this connection.
        self.timer_at: float | None = None
        #: A deadline of our own: TLS handshake, a write waiting on the client (too long
        #: without progress, or too slow: ``pace``), or the lingering close.
        self.io_deadline: float | None = (now + loop.config.timeout_tls_handshake) if tls else None
        #: The account of the waits on this client (made at the first one), and the bytes sent
        #: from the queue since (what it took, where TCP_INFO says nothing: a Unix socket).
        self.pace: WritePace | None = None
        self.taken = 0
        self.lingered = 0
        #: Bytes read and written (decrypted under TLS), counted only with --metrics-port.
        self.counting = loop.metrics is not None
        self.received = 0
        self.sent = 0

    def schedule(self, now: float) -> None:
        """Make sure the loop's timer heap looks at this connection by its next deadline."""
        raise NotImplementedError  # the subclass knows the protocol's deadlines

    def drained(self, now: float) -> None:
        """The output fell to OUT_LOW or less: what waited for the client to read may go on."""

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

    @property
    def cond(self) -> threading.Condition:
        """The condition on :attr:`lock` that waiting threads use; call with the lock held.

        Made on first use, under the lock, so no two threads can make two of them; a thread
        that finds none to notify has no one waiting on it (:meth:`notify`)."""
        cond = self._cond
        if cond is None:
            cond = self._cond = threading.Condition(self.lock)
        return cond

    def notify(self) -> None:
        """Wake every thread waiting on :attr:`cond` (lock held)."""
        if self._cond is not None:
            self._cond.notify_all()

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

    # -- reading --------------------------------------------------------------------------------

    def recv(self) -> bytes | None:
        """One ``recv``: bytes (``b""`` at EOF, noted in :attr:`eof`), or None when there is
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
            self.eof = True
        elif self.tls:
            # Decrypted bytes of the current record are invisible to the selector.
            pending = cast(ssl.SSLSocket, self.sock).pending()
            if pending:
                data += self.sock.recv(pending)
        if self.counting:
            self.received += len(data)
        return data

    def _handshake(self, now: float) -> None:
        """Go on with the TLS handshake; once done, read HTTP (loop thread)."""
        try:
            # A peek at the raw bytes: every TLS record starts with a byte below 0x20, so this
            # sees plain HTTP only where a handshake should start.
            first = socket.socket.recv(self.sock, 1, socket.MSG_PEEK)
        except OSError:  # nothing there yet (or a reset the handshake will meet)
            first = b""
        if plain_http(first):
            _log.debug("%s: plain HTTP sent to the TLS port: answered 400", self.client)
            self._plain_socket()
            with contextlib.suppress(OSError):
                self.sock.send(PLAIN_HTTP_RESPONSE)  # a few hundred bytes: the buffer takes them
            self._finish_close(now)
            return
        try:
            cast(ssl.SSLSocket, self.sock).do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError) as exc:
            self.want = READ if isinstance(exc, ssl.SSLWantReadError) else WRITE
            self.sync()
            return
        except ssl.SSLError as exc:
            _log.debug("%s: TLS handshake failed: %s", self.client, exc)
            self._linger_after_alert(now)
            return
        except OSError as exc:
            _log.debug("%s: TLS handshake failed: %s", self.client, exc)
            self.close_now()
            return
        self.phase = Phase.HTTP
        self.io_deadline = None
        self.want = READ
        self.sync()
        self.schedule(now)
        self.on_readable(now)

    def _linger_after_alert(self, now: float) -> None:
        """The handshake failed, and OpenSSL has sent the alert that says why (certificate
        required, protocol version). A TLS 1.3 client sends its request before the server
        checks its certificate: closing with those bytes unread would reset the connection
        and destroy the alert before the client reads it. So half-close and linger as after
        HTTP, reading the client's bytes raw (the TLS layer is dead) and dropping them."""
        if self.eof:
            self.close_now()
            return
        self._plain_socket()
        self._finish_close(now)

    def _plain_socket(self) -> None:
        """Go on with the connection's plain socket (its TLS layer failed or was never used)."""
        if self.registered:  # the descriptor is registered again under its plain socket
            self.loop.selector.unregister(self.sock)
            self.registered = 0
        self.sock = socket.socket(fileno=self.sock.detach())
        self.tls = False
        self.phase = Phase.HTTP

    def on_readable(self, now: float) -> None:
        """The socket is readable (loop thread): go on with the TLS handshake, or read and drop
        a lingering client's last bytes (closing at its EOF or past ``linger_bytes``)."""
        if self.phase is Phase.HANDSHAKE:
            self._handshake(now)
        elif self.phase is Phase.LINGER and (data := self.recv()) is not None:
            self.lingered += len(data)
            if not data or self.lingered > RULES.linger_bytes:
                self.close_now()

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

    def park_writable(self, resume: Callable[[], None]) -> None:
        """A worker's send would block: the loop hands ``resume`` back to the workers once the
        socket is writable (or the connection closed), the write timeout running (lock held)."""
        self.parked = resume
        self._want_write()

    def _want_write(self) -> None:
        """Watch for writability, the write timeout running from now (any thread)."""
        if not self.want & WRITE:
            self.want |= WRITE
            pace = self.pace
            if pace is None:
                config = self.loop.config
                timeout = config.timeout_write or math.inf
                pace = self.pace = WritePace(timeout, config.min_write_rate)
            self.io_deadline = pace.wait(time.monotonic(), self.taken_bytes())
            self.apply()  # on the loop thread, the write deadline is scheduled at once

    def taken_bytes(self) -> int:
        """What the client took: TCP's acknowledged bytes, else what left the queue since
        the first wait (a Unix socket)."""
        acked = acked_bytes(self.sock)
        return self.taken if acked is None else acked

    def write_deadline(self, now: float) -> float | None:
        """A write's deadline passed at ``now`` by the clock of its last look: look again
        (loop thread); None when it has really passed, else the new one."""
        pace = self.pace
        if pace is None or not pace.waiting:
            return None
        deadline = pace.progress(now, self.taken_bytes())
        return None if deadline <= now else deadline

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
                pace = self.pace
                if pace is not None and pace.waiting:
                    self.taken += sent
                    self.io_deadline = pace.progress(now, self.taken_bytes())
                else:
                    self.io_deadline = now + self.loop.config.timeout_write
        if len(self.outbuf) <= OUT_LOW:
            self.drained(now)
            self._unpark()
        if not self.outbuf:
            self.want &= ~WRITE
            self.io_deadline = None
            if self.pace is not None:
                self.pace.done(now)
            self.sync()
            self.notify()
            if self.closing:
                self._finish_close(now)
        elif len(self.outbuf) <= OUT_HIGH:
            self.notify()

    # -- closing --------------------------------------------------------------------------------

    def close_soon(self) -> None:
        """Close once everything queued is sent (any thread)."""
        if self.closing:
            return
        self.closing = True
        self.notify()
        if not self.outbuf:  # else on_writable finishes the close
            self.apply()

    def break_(self) -> None:
        """The socket failed: drop what is queued and close (any thread)."""
        self.broken = True
        self.closing = True
        self.outbuf.clear()
        self.notify()
        self.apply()

    def _finish_close(self, now: float) -> None:
        """Everything queued is sent: half-close and linger (HTTP), reading and dropping what
        the client still sends, so that closing with unread bytes does not reset the connection
        and destroy the end of the last response before the client reads it. Over TLS too:
        the half-close is TCP's (an SSLSocket's own ``shutdown`` would drop its TLS layer), so
        what the lingering reads drop is the client's decrypted bytes, as counted elsewhere."""
        if self.broken or self.phase is not Phase.HTTP or self.eof:
            self.close_now()
            return
        try:
            socket.socket.shutdown(self.sock, socket.SHUT_WR)
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
        self._unpark()  # a parked response's next write fails and its worker cleans up
        self.notify()  # wakes writers, and a WebSocket application in receive()

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


__all__ = ["OUT_HIGH", "OUT_LOW", "READ", "WRITE", "Owner", "Phase", "Transport"]
