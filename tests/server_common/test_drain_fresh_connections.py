"""A graceful shutdown loses no request on a connection that was accepted but had sent nothing
yet: its first request is read and answered (with ``Connection: close``), on both servers.

Closing such a connection as "idle" loses the request the client may be sending: HTTP
clients retry by themselves only when a reused keep-alive connection closes, never a new one.
This is the race that dropped a request while ``--limit-max-requests`` recycled workers. A
connection idle after a response is still closed at once, as before; one that sends nothing is
closed after a short grace.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.adversarial._servers import make_certificate
from tests.processes import LogLines, free_port, reaped, spawn
from tests.server_common.test_systemd_processes import WSGI_APP

pytestmark = pytest.mark.timeout(60)

ASGI_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
"""

SERVERS = {
    "asyncio": ("tether_asyncio", "serve", "drainapp:app"),
    "threaded": ("tether_threaded", "drainapp:app"),
}


@contextlib.contextmanager
def _server(
    tmp_path: Path, server: str, *options: str
) -> Iterator[tuple[int, subprocess.Popen[str], LogLines]]:
    """``server`` serving the app on a free port (reaped after the block): its port, process
    and log. The test stops it (SIGTERM) when it wants the drain."""
    (tmp_path / "drainapp.py").write_text(ASGI_APP if server == "asyncio" else WSGI_APP)
    module, *rest = SERVERS[server]
    port = free_port()
    proc = spawn(module, tmp_path, *rest, "--port", str(port), "--no-access-log", *options)
    with reaped(proc):
        log = LogLines(proc)
        log.wait_for("running on")
        yield port, proc, log


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    with contextlib.suppress(ssl.SSLEOFError, ssl.SSLZeroReturnError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
@pytest.mark.parametrize("server", sorted(SERVERS))
def test_a_fresh_connection_is_answered_during_the_drain(
    tmp_path: Path, server: str, tls: bool
) -> None:
    options: list[str] = []
    context = None
    if tls:  # the fresh connection is then one whose TLS handshake has not begun
        cert, key = make_certificate(tmp_path)
        options += ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    with _server(tmp_path, server, *options) as (port, proc, log):
        fresh = socket.create_connection(("127.0.0.1", port), timeout=20)
        used = socket.create_connection(("127.0.0.1", port), timeout=20)
        if context is not None:
            used = context.wrap_socket(used)
        with fresh, used:
            # `used` was accepted after `fresh` (one backlog, first in first out): once it is
            # answered, the server holds `fresh` as an open connection with nothing read.
            used.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert used.recv(65536).startswith(b"HTTP/1.1 200")
            proc.send_signal(signal.SIGTERM)
            # The drain began: the idle keep-alive connection is closed at once (over TLS the
            # threaded server has closed it before it counts), the fresh one waits for its
            # request.
            log.wait_for("connection(s) to finish")
            assert _read_all(used) == b""
            client = fresh if context is None else context.wrap_socket(fresh)
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = _read_all(client)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert b"\r\nconnection: close\r\n" in answer.lower()
        assert answer.endswith(b"\r\n\r\nok")
        assert proc.wait(30) == 0, log.text


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_many_fresh_connections_during_recycling_all_answered(tmp_path: Path, server: str) -> None:
    """Workers recycled every 3 requests under a client that opens a new connection for each
    request: every request is answered (a fresh connection is never dropped by a drain)."""
    recycling = ("--workers", "2", "--limit-max-requests", "3")
    with _server(tmp_path, server, *recycling) as (port, proc, log):
        with httpx.Client(headers={"Connection": "close"}, timeout=20) as client:
            for _ in range(300):
                assert client.get(f"http://127.0.0.1:{port}/").text == "ok"
        assert log.count("reached --limit-max-requests") >= 2, log.text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.text


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_a_silent_fresh_connection_does_not_hold_the_stop(tmp_path: Path, server: str) -> None:
    """A connection that sends nothing is closed after a short grace (the core's
    ``RULES.fresh_grace_seconds``), not kept for its head timeout: with a 300 s head timeout
    and a 300 s drain limit, the server still stops within the test's bound. A connection that
    has sent part of a head is not closed by the grace: its request is completed and answered.
    """
    slow = ("--timeout-request-head", "300", "--timeout-graceful-shutdown", "300")
    with _server(tmp_path, server, *slow) as (port, proc, log):
        silent = socket.create_connection(("127.0.0.1", port), timeout=20)
        started = socket.create_connection(("127.0.0.1", port), timeout=20)
        probe = socket.create_connection(("127.0.0.1", port), timeout=20)
        with silent, started, probe:
            started.sendall(b"GET / HTTP/1.1\r\n")
            # Answered: the server has accepted all three (one backlog, in order).
            probe.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert _read_all(probe).startswith(b"HTTP/1.1 200")
            proc.send_signal(signal.SIGTERM)
            assert _read_all(silent) == b""  # closed at the end of the grace
            started.sendall(b"Host: x\r\n\r\n")
            answer = _read_all(started)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert proc.wait(30) == 0, log.text
