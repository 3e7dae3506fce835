"""Both servers raise their soft limit on open files to the hard one at start-up.

Each client holds a descriptor. Under systemd's default for services (soft 1024, hard 524288)
a server that keeps the soft limit stops accepting at about a thousand clients, however idle,
while the system allows far more; systemd's documentation asks such programs to raise the soft
limit themselves. Real processes started with a low soft limit, real idle connections.
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import ROOT, RUNNING, SOURCES, free_port, read_until, reaped, wait_until

SOFT, HARD = 128, 2048
#: More idle clients than the soft limit allows descriptors.
IDLE = 300

APPS = {
    "asyncio": (
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200,\n"
        "                'headers': [(b'content-length', b'2')]})\n"
        "    await send({'type': 'http.response.body', 'body': b'ok'})\n"
    ),
    "threaded": (
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Length', '2')])\n"
        "    return [b'ok']\n"
    ),
}
COMMANDS = {"asyncio": ["tether_asyncio", "serve"], "threaded": ["tether_threaded"]}


#: Runs ``python -m MODULE ARGS`` with the low soft limit set first.
_WITH_LOW_LIMIT = (
    "import resource, runpy, sys\n"
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({SOFT}, {HARD}))\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\n"
)


@contextlib.contextmanager
def _server(kind: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    (tmp_path / "limit_app.py").write_text(APPS[kind])
    port = free_port()
    path = [str(tmp_path), *map(str, SOURCES), str(ROOT)]
    command = [*COMMANDS[kind], "limit_app:app", "--port", str(port), "--log-level", "debug"]
    command += ["--timeout-request-head", "120", "--timeout-keep-alive", "120"]
    proc = subprocess.Popen(
        [sys.executable, "-c", _WITH_LOW_LIMIT, *command],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(path)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    with reaped(proc):
        read_until(proc, RUNNING)
        yield proc, port


def _open_files_limit(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/limits") as limits:
        for line in limits:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no open-file limit in /proc/PID/limits")


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux's /proc")
@pytest.mark.skipif(
    resource.getrlimit(resource.RLIMIT_NOFILE)[0] < IDLE + 100,
    reason="this process may not open enough sockets",
)
@pytest.mark.parametrize("kind", list(COMMANDS))
def test_more_idle_clients_than_the_soft_limit_leave_the_server_answering(
    kind: str, tmp_path: Path
) -> None:
    with _server(kind, tmp_path) as (proc, port):
        assert _open_files_limit(proc.pid) == (HARD, HARD)
        idle = []
        try:
            for _ in range(IDLE):
                idle.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            # The server holds a descriptor for each (it accepted them all).
            assert wait_until(lambda: len(os.listdir(f"/proc/{proc.pid}/fd")) > IDLE, 20)
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                answer = b""
                while piece := sock.recv(65536):
                    answer += piece
            assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"ok"), answer
        finally:
            for sock in idle:
                sock.close()


def test_the_hard_limit_is_never_passed() -> None:
    # In a child with its own limits, so this process's stay as they are.
    code = (
        "import resource\n"
        "from tether_server.startup import raise_open_file_limit\n"
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({SOFT}, {HARD}))\n"
        "print(raise_open_file_limit(), resource.getrlimit(resource.RLIMIT_NOFILE))\n"
        "print(raise_open_file_limit(), resource.getrlimit(resource.RLIMIT_NOFILE))\n"
    )
    path = os.pathsep.join(map(str, SOURCES))
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(os.environ, PYTHONPATH=path),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out == [f"({SOFT}, {HARD}) ({HARD}, {HARD})", f"None ({HARD}, {HARD})"]
