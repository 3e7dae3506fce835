"""SIGQUIT: a quick, clean stop (gunicorn's QUIT), on both servers, alone and under --workers.

Its default action killed the process with a core dump: a supervisor gone that way left its
workers to notice its death, and a lone server left no "Tether stopped" and exited -3. Now it
is a stop signal and its forcing second at once: the listener is closed, open connections are
ended without waiting for ``--timeout-graceful-shutdown``, lifespan shutdown runs, status 0.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.processes import RUNNING, SLOW_WSGI, STOPPED, LogLines, free_port, reaped, spawn_server

pytestmark = pytest.mark.timeout(90)

#: ``/slow`` says "in app" and then waits ten minutes; anything else is answered at once.
ASGI_APP = """
import anyio

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                print("lifespan shutdown", flush=True)
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["path"] == "/slow":
        print("in app", flush=True)
        await anyio.sleep(600)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"4")]})
    await send({"type": "http.response.body", "body": b"done"})
"""

WSGI_APP = SLOW_WSGI

SERVERS = ("asyncio", "trio", "threaded")


def _serve(server: str, cwd: Path, port: int, *args: str) -> subprocess.Popen[str]:
    """A server whose graceful stop would wait ten minutes for a request in flight."""
    common = ("--port", str(port), "--timeout-graceful-shutdown", "600", "--no-access-log", *args)
    lifespan = () if server == "threaded" else ("--lifespan", "on")
    return spawn_server(server, cwd, (ASGI_APP, WSGI_APP), *lifespan, *common)


def _connect(port: int, request: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(request)
    return sock


def _read_to_eof(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset counts as the close)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


@pytest.mark.parametrize("workers", [1, 2], ids=["alone", "workers"])
@pytest.mark.parametrize("server", SERVERS)
def test_sigquit_stops_quickly_and_cleanly(tmp_path: Path, server: str, workers: int) -> None:
    port = free_port()
    extra = ("--workers", str(workers)) if workers > 1 else ()
    proc = _serve(server, tmp_path, port, *extra)
    with reaped(proc):
        log, out = LogLines(proc), LogLines(proc, stdout=True)
        log.wait_for(RUNNING, count=workers)
        # An idle keep-alive connection, and a request that would hold a graceful stop for
        # the whole ten-minute grace.
        idle = _connect(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert idle.recv(1024).endswith(b"done")
        busy = _connect(port, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        with idle, busy:
            out.wait_for("in app")
            proc.send_signal(signal.SIGQUIT)
            # A hang guard far below the grace: a graceful stop would still be waiting.
            status = proc.wait(30)
            assert _read_to_eof(busy) == b""  # ended, not answered
            assert _read_to_eof(idle) == b""
        err = log.finish()
        assert status == 0, err
        assert err.count("SIGQUIT received") == workers + (workers > 1), err
        if workers > 1:
            assert "SIGQUIT received: stopping the workers quickly" in err
        assert "shutting down quickly" in err
        assert "second signal" not in err and "a second signal forces" not in err
        assert err.count(STOPPED) == workers
        assert "Traceback" not in err
        if server != "threaded":
            assert out.finish().count("lifespan shutdown") == workers
        # The listener is closed: nothing accepts on the port any more.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
