"""``--limit-max-requests`` (requests per process, then a replacement) and
``--limit-requests-per-connection`` (requests per keep-alive connection): the same names and
meanings on both servers, in real subprocesses."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.processes import free_port, read_until, reaped, spawn, touch_with
from tether_server.recycling import RequestBudget

pytestmark = pytest.mark.timeout(120)

APPS = {
    "tether_threaded": """
import os

def app(environ, start_response):
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
""",
    "tether_asyncio": """
import os

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = str(os.getpid()).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
""",
}


def _server(module: str, cwd: Path, *args: str) -> subprocess.Popen[str]:
    touch_with(cwd / "pidapp.py", APPS[module])
    command = ("serve",) if module == "tether_asyncio" else ()
    return spawn(module, cwd, *command, "pidapp:app", "--no-access-log", *args)


@pytest.mark.parametrize("module", sorted(APPS))
def test_workers_are_replaced_after_max_requests_without_a_failed_request(
    module: str, tmp_path: Path
) -> None:
    port = free_port()
    proc = _server(
        module, tmp_path, "--port", str(port), "--workers", "2", "--limit-max-requests", "5"
    )
    with reaped(proc):
        read_until(proc, f"127.0.0.1:{port}", 2)
        seen: set[str] = set()
        with httpx.Client(headers={"Connection": "close"}) as client:
            # The old workers serve on until their replacements serve: new pids come, and no
            # request fails on the way.
            for _ in range(2000):
                response = client.get(f"http://127.0.0.1:{port}/")
                assert response.status_code == 200
                seen.add(response.text)
                if len(seen) >= 4:
                    break
        assert len(seen) >= 4, seen
        read_until(proc, "reached --limit-max-requests")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


@pytest.mark.parametrize("module", sorted(APPS))
def test_alone_the_server_stops_gracefully_after_max_requests(module: str, tmp_path: Path) -> None:
    port = free_port()
    proc = _server(module, tmp_path, "--port", str(port), "--limit-max-requests", "3")
    with reaped(proc):
        read_until(proc, f"127.0.0.1:{port}")
        with httpx.Client() as client:
            answers = {client.get(f"http://127.0.0.1:{port}/").text for _ in range(3)}
        assert answers == {str(proc.pid)}
        assert proc.wait(30) == 0
        assert proc.stderr is not None
        assert "served 3 requests (--limit-max-requests)" in proc.stderr.read()


@pytest.mark.parametrize("module", sorted(APPS))
def test_limit_requests_per_connection_closes_the_connection(module: str, tmp_path: Path) -> None:
    port = free_port()
    proc = _server(module, tmp_path, "--port", str(port), "--limit-requests-per-connection", "2")
    with reaped(proc):
        read_until(proc, f"127.0.0.1:{port}")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        assert data.count(b"HTTP/1.1 200") == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


def test_the_jitter_adds_up_to_n() -> None:
    limits = {RequestBudget(5, 3).limit for _ in range(200)}
    assert limits <= {5, 6, 7, 8} and len(limits) > 1
    assert RequestBudget(None, 3).limit is None
