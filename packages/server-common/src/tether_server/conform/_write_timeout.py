"""The ``write-timeout`` probe of ``tether conform``: a client that asks and never reads.

A server that waits forever on a client that does not read keeps the
connection, its buffers and (in a threaded server) a worker: a few such
clients exhaust it. The probe shrinks its receive window, pipelines enough
requests for the URL (or ``--large-path``) that the answers fill every buffer
between the two (``TOTAL`` bytes of responses, measured from one answer), and
then reads nothing for ``wait`` seconds. Then it drains: a server that gave
up on the write has closed (or reset) the connection before the last answer;
one that still waits delivers every answer. A reset is noticed while waiting.

It takes up to ``wait`` seconds, so ``tether conform`` runs it only with
``--slow`` (or ``--only write-timeout``).
"""

from __future__ import annotations

import errno
import socket
import time

from tether.errors import ProtocolError
from tether.http1 import NEED_DATA, ClientConnection, ConnectionClosed, EndOfMessage, Request
from tether_server.conform._probes import Result, Verdict
from tether_server.conform._wire import Target, exchange

GROUP = "write-timeout"
#: Bytes of responses asked for: more than a loopback socket's send buffer (4 MiB at most
#: by default on Linux) plus what a server buffers itself at its high-water mark. Small
#: answers take many requests (slow on a slow server): give --large-path when you can.
TOTAL = 12 << 20
MAX_REQUESTS = 200_000
_TITLE = "a client that never reads a large response"
_SAFE = "close the connection once a write has waited too long (a write or send timeout)"


def _result(verdict: Verdict, observed: str) -> Result:
    return Result("write-timeout", GROUP, _TITLE, "RFC 9112 9.5", "", verdict, _SAFE, observed)


def skipped(wait: float) -> Result:
    """The result when the probe is not run."""
    return _result(Verdict.SKIP, f"skipped: pass --slow to run it (it takes up to {wait:g} s)")


def write_timeout(target: Target, wait: float, path: bytes | None = None) -> Result:
    """Ask for about ``TOTAL`` bytes of responses, read nothing for ``wait`` seconds, then drain."""
    path = path or target.path
    request = b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, target.authority)
    one = exchange(target, [request], expect=(b"GET",))
    if not one.statuses:
        return _result(Verdict.ERROR, f"a single request got no answer: {one.summary()}")
    count = min(MAX_REQUESTS, TOTAL // max(len(one.raw), 1) + 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small window before connecting: the server's writes block sooner.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    with sock:
        try:
            sock.settimeout(target.timeout)
            sock.connect((target.host, target.port))
        except OSError as exc:
            return _result(Verdict.ERROR, f"cannot connect: {exc}")
        sent = _send(sock, request * count)
        asked = sent // len(request)
        started = time.monotonic()
        reset_after = _watch(sock, started + wait)
        answered, closed = _drain(sock, target, path, asked)
    size = f"{asked} requests for {asked * len(one.raw) >> 20} MiB"
    if reset_after is not None:
        return _result(Verdict.PASS, f"{size}: reset after {reset_after:.1f} s unread")
    if closed and answered < asked:
        return _result(
            Verdict.PASS,
            f"{size}: closed within {wait:g} s unread ({answered} answers were on the way)",
        )
    if answered == asked:
        return _result(
            Verdict.WARN,
            f"{size}: still waiting to write after {wait:g} s unread (every answer came once read)",
        )
    return _result(
        Verdict.WARN,
        f"{size}: after {wait:g} s unread, {answered} answers came, then the server stayed silent",
    )


def _send(sock: socket.socket, data: bytes) -> int:
    """Send what the server takes; stop when it stops reading. The bytes sent."""
    sent = 0
    view = memoryview(data)
    sock.settimeout(1.0)
    while sent < len(data):
        try:
            sent += sock.send(view[sent : sent + 65536])
        except (TimeoutError, OSError):
            break  # the server stopped reading (its own buffers are full): enough
    return sent


def _watch(sock: socket.socket, deadline: float) -> float | None:
    """Wait, reading nothing, until ``deadline``; the seconds until a reset, if one comes."""
    started = time.monotonic()
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(0.25, left))
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error in (errno.ECONNRESET, errno.EPIPE):
            return time.monotonic() - started
    return None


def _drain(sock: socket.socket, target: Target, path: bytes, asked: int) -> tuple[int, bool]:
    """Read every answer now: how many complete ones came, and whether the server closed."""
    conn = ClientConnection()
    for _ in range(asked):
        conn.send(Request(b"GET", path, [(b"host", target.authority)]))
        conn.send(EndOfMessage())
    answered = 0
    sock.settimeout(target.timeout)
    while answered < asked:
        try:
            event = conn.next_event()
        except ProtocolError:
            return answered, True  # cut off mid-response: it closed
        if isinstance(event, EndOfMessage):
            answered += 1
        elif isinstance(event, ConnectionClosed):
            return answered, True
        elif event is NEED_DATA:
            try:
                data = sock.recv(1 << 20)
            except TimeoutError:
                return answered, False
            except OSError:
                data = b""
            conn.receive_data(data)
    return answered, False
