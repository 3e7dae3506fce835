"""``tether-threaded --workers N`` and ``--reload`` in real subprocesses.

The supervisor is the core's (``tether_server.supervisor``), shared with ``tether serve``, whose tests
cover it in more detail; these check that the WSGI command line drives it the same way.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.processes import RUNNING, free_port, read_until, reaped, spawn, touch_with

pytestmark = pytest.mark.timeout(120)

APP = """
import os

def app(environ, start_response):
    body = b"%s:" + str(os.getpid()).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""


def _threaded(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return spawn("tether_threaded", cwd, *args, "--threads", "2")


def _answers(port: int, want: int, attempts: int = 400) -> set[str]:
    seen: set[str] = set()
    for _ in range(attempts):
        seen.add(httpx.get(f"http://127.0.0.1:{port}/", headers={"Connection": "close"}).text)
        if len(seen) >= want:
            break
    return seen


def test_two_workers_share_the_port_restart_and_stop(tmp_path: Path) -> None:
    touch_with(tmp_path / "pidapp.py", APP % "a")
    port = free_port()
    proc = _threaded(tmp_path, "pidapp:app", "--port", str(port), "--workers", "2")
    with reaped(proc):
        read_until(proc, RUNNING, 2)
        first = _answers(port, 2)
        assert len(first) == 2
        victim = int(min(first).split(":")[1])
        os.kill(victim, signal.SIGKILL)
        read_until(proc, "restarting")
        read_until(proc, RUNNING)
        now = _answers(port, 2)
        assert len(now) == 2 and f"a:{victim}" not in now
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


def test_a_worker_that_cannot_import_the_app_stops_the_server(tmp_path: Path) -> None:
    proc = _threaded(tmp_path, "nosuchmodule_xyz:app", "--port", "0", "--workers", "2")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert 'could not import module "nosuchmodule_xyz"' in err
    assert "while starting; stopping" in err


def test_reload_serves_the_changed_app(tmp_path: Path) -> None:
    app = tmp_path / "pidapp.py"
    touch_with(app, APP % "v1")
    port = free_port()
    proc = _threaded(tmp_path, "pidapp:app", "--port", str(port), "--reload")
    with reaped(proc):
        read_until(proc, RUNNING)
        assert httpx.get(f"http://127.0.0.1:{port}/").text.startswith("v1:")
        touch_with(app, APP % "v2")
        read_until(proc, RUNNING)
        assert httpx.get(f"http://127.0.0.1:{port}/").text.startswith("v2:")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
