"""The ``write-timeout`` probe of ``tether conform``: a client that asks and never reads.

A server that waits forever on a client that does not read keeps the
connection, its buffers and (in a threaded server) a worker: a few such
clients exhaust it. The probe shrinks its receive window and pipelines
requests for the URL (or ``--large-path``, a path with a large response)
until the server stops taking them: its answers have filled every buffer
between the two and it is blocked on a write. From then on it reads nothing
for ``wait`` seconds, and then drains: a server that gave up on the write has
closed (or reset) the connection; one that still waits goes on answering.

It takes ``wait`` seconds and more, so ``tether conform`` runs it only with
``--slow`` (or ``--only write-timeout``).
"""

from __future__ import annotations

import errno
import socket
import time

from tether.errors import ProtocolError
from tether.http1 import (
    NEED_DATA,
    PAUSED,
    ClientConnection,
    ConnectionClosed,
    EndOfMessage,
    Request,
)
from tether_server.conform._probes import Result, Verdict
from tether_server.conform._wire import Target, exchange

GROUP = "write-timeout"
#: How many requests at most, and for how long, while the server still takes them.
MAX_REQUESTS = 300_000
FLOOD_SECONDS = 30.0
#: A send blocked this long means the server stopped reading.
STALL = 1.0
#: Bytes, or seconds, drained after the wait without an end: the server went on answering.
#: (What a closed server left in the buffers comes in far less, at loopback speed.)
DRAIN_LIMIT = 32 << 20
DRAIN_SECONDS = 10.0
#: Seconds without a byte, while draining, before concluding the server went silent.
DRAIN_PATIENCE = 10.0
_TITLE = "a client that never reads a large response"
_SAFE = "close the connection once a write has waited too long (a write or send timeout)"


#: RFC 9112 9.5: what lets a server give up on a client (a MAY: no level is asked).
_SENTENCE = "A client, server, or proxy MAY close the transport connection at any time."


def _result(verdict: Verdict, observed: str) -> Result:
    return Result(
        "write-timeout",
        GROUP,
        _TITLE,
        "RFC 9112 9.5",
        "",
        verdict,
        _SAFE,
        observed,
        # A skipped probe asked nothing of the server: no sentence to quote.
        sentence="" if verdict is Verdict.SKIP else _SENTENCE,
    )


def skipped(wait: float) -> Result:
    """The result when the probe is not run."""
    return _result(Verdict.SKIP, f"skipped: pass --slow to run it (it takes over {wait:g} s)")


def write_timeout(target: Target, wait: float, path: bytes | None = None) -> Result:
    """Pipeline requests until the server stops reading, read nothing for ``wait`` s, drain."""
    path = path or target.path
    request = b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, target.authority)
    one = exchange(target, [request], expect=(b"GET",))
    if not one.statuses:
        return _result(Verdict.ERROR, f"a single request got no answer: {one.summary()}")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small window before connecting: the server's writes block sooner.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    with sock:
        try:
            sock.settimeout(target.timeout)
            sock.connect((target.host, target.port))
        except OSError as exc:
            return _result(Verdict.ERROR, f"cannot connect: {exc}")
        asked, stalled = _flood(sock, request)
        reset_after = _watch(sock, time.monotonic() + wait)
        drained = _drain(sock, target, path, asked) if reset_after is None else None
    sent = f"{asked} requests" + ("" if stalled else " (it never stopped reading them)")
    if reset_after is not None:
        return _result(Verdict.PASS, f"{sent}: reset after {reset_after:.1f} s unread")
    assert drained is not None
    answered, end, announced = drained
    if end == "closed" and announced:
        return _result(
            Verdict.INFO,
            f"{sent}: it ended the connection itself after {answered} answers (Connection: close), "
            "so its write timeout was not reached: try --large-path",
        )
    if end == "closed":
        return _result(
            Verdict.PASS, f"{sent}: closed within {wait:g} s unread ({answered} answers came)"
        )
    if end == "silent":
        return _result(
            Verdict.WARN,
            f"{sent}: after {wait:g} s unread, {answered} answers came, then silence (still open)",
        )
    return _result(
        Verdict.WARN,
        f"{sent}: still waiting to write after {wait:g} s unread "
        f"(once read, it went on: {answered} answers)",
    )


def _flood(sock: socket.socket, request: bytes) -> tuple[int, bool]:
    """Send requests until the server stops taking them; (whole requests sent, it stalled)."""
    block = request * max(1, 65536 // len(request))
    sent = 0
    deadline = time.monotonic() + FLOOD_SECONDS
    sock.settimeout(STALL)
    while sent < MAX_REQUESTS * len(request) and time.monotonic() < deadline:
        offset = sent % len(block)
        try:
            sent += sock.send(block[offset:] if offset else block)
        except (TimeoutError, OSError):
            return sent // len(request), True  # the server stopped reading: it is blocked
    return sent // len(request), False


def _watch(sock: socket.socket, deadline: float) -> float | None:
    """Wait, reading nothing, until ``deadline``; the seconds until a reset, if one comes."""
    started = time.monotonic()
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(0.25, left))
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error in (errno.ECONNRESET, errno.EPIPE):
            return time.monotonic() - started
    return None


def _drain(sock: socket.socket, target: Target, path: bytes, asked: int) -> tuple[int, str, bool]:
    """Read now: (answers complete, how it ended, the last answer announced a close).

    The end is "closed" (EOF, reset or a cut response), "silent" (no byte for
    ``DRAIN_PATIENCE`` seconds), or "went on" (every answer, ``DRAIN_LIMIT`` bytes or ``DRAIN_SECONDS``).
    """
    conn = ClientConnection()
    registered = answered = received = 0
    # A server that buffered many requests may take a while to resume: be patient here.
    sock.settimeout(max(target.timeout, DRAIN_PATIENCE))
    until = time.monotonic() + DRAIN_SECONDS
    while answered < asked and received < DRAIN_LIMIT and time.monotonic() < until:
        if conn.pending_responses == 0 and registered < asked and conn.keep_alive:
            # Registered as they are read: up to MAX_REQUESTS at once would cost memory.
            conn.send(Request(b"GET", path, [(b"host", target.authority)]))
            conn.send(EndOfMessage())
            registered += 1
        try:
            event = conn.next_event()
        except ProtocolError:
            return answered, "closed", False  # cut off mid-response
        if isinstance(event, EndOfMessage):
            answered += 1
        elif isinstance(event, ConnectionClosed) or event is PAUSED:
            return answered, "closed", not conn.keep_alive
        elif event is NEED_DATA:
            try:
                data = sock.recv(1 << 20)
            except TimeoutError:
                return answered, "silent", False
            except OSError:
                data = b""
            received += len(data)
            conn.receive_data(data)
    return answered, "went on", False
