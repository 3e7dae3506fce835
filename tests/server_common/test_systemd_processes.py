"""systemd socket activation and sd_notify, with real server processes.

The test plays systemd: it binds the listening socket, starts the server with that socket at
file descriptor 3 and ``LISTEN_FDS=1`` / ``LISTEN_PID`` naming the server's own pid (a small
launcher moves the socket and then execs the server, as systemd does), and owns the
``NOTIFY_SOCKET`` datagram socket the server reports to.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import SLOW_APP, LogLines, reaped, spawn

LAUNCHER = """
import os, sys
os.dup2(int(sys.argv[1]), 3)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDNAMES"] = "http"
os.execv(sys.executable, [sys.executable, "-m", *sys.argv[2:]])
"""

WSGI_APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
"""

SERVERS = {
    "asyncio": ("tether_asyncio", "serve", "slowapp:app"),
    "threaded": ("tether_threaded", "wsgiapp:app"),
}


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "activate.py").write_text(LAUNCHER)
    (tmp_path / "slowapp.py").write_text(SLOW_APP)
    (tmp_path / "wsgiapp.py").write_text(WSGI_APP)
    return tmp_path


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(30)
    yield sock
    sock.close()


def _message(sock: socket.socket) -> dict[str, str]:
    fields = sock.recv(4096).decode().split("\n")
    return dict(field.split("=", 1) for field in fields)


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("workers", [1, 2])
def test_socket_activation_and_notify(
    app_dir: Path, manager: socket.socket, server: str, workers: int
) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    env = {"NOTIFY_SOCKET": manager.getsockname()}
    # --port 1 would fail to bind: serving at all shows the activated socket was used.
    args = [*SERVERS[server], "--port", "1", "--workers", str(workers)]
    proc = spawn(
        "activate", app_dir, str(listener.fileno()), *args, env=env, pass_fds=(listener.fileno(),)
    )
    listener.close()  # the server's copy is the one that listens now
    with reaped(proc):
        log = LogLines(proc)
        ready = _message(manager)
        assert ready["READY"] == "1"
        assert ready["MAINPID"] == str(proc.pid)  # the supervisor, never a worker
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
        log.wait_for("socket passed by systemd")
        if workers > 1:
            proc.send_signal(signal.SIGHUP)
            assert _message(manager)["RELOADING"] == "1"
            reloaded = _message(manager)
            assert reloaded["READY"] == "1" and reloaded["STATUS"].startswith("reloaded")
            proc.send_signal(signal.SIGTERM)
            assert _message(manager) == {"STOPPING": "1"}
        else:
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
