"""``tether-threaded --workers N`` and ``--reload`` in real subprocesses.

The supervisor is the core's (``tether._supervisor``), shared with ``tether serve``, whose tests
cover it in more detail; these check that the WSGI command line drives it the same way.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)

APP = """
import os

def app(environ, start_response):
    body = b"%s:" + str(os.getpid()).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _threaded(cwd: Path, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(cwd), str(ROOT)]))
    return subprocess.Popen(
        [sys.executable, "-m", "tether_threaded", *args, "--threads", "2"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_until(proc: subprocess.Popen[str], text: str, count: int = 1) -> None:
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if sum(text in seen for seen in lines) >= count:
            return
    raise AssertionError(f"server exited ({proc.wait()}) before {text!r}: {''.join(lines)}")


def _answers(port: int, want: int, attempts: int = 400) -> set[str]:
    seen: set[str] = set()
    for _ in range(attempts):
        seen.add(httpx.get(f"http://127.0.0.1:{port}/", headers={"Connection": "close"}).text)
        if len(seen) >= want:
            break
    return seen


def _write(path: Path, version: str) -> None:
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(APP % version)
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


def test_two_workers_share_the_port_restart_and_stop(tmp_path: Path) -> None:
    _write(tmp_path / "pidapp.py", "a")
    port = _free_port()
    proc = _threaded(tmp_path, "pidapp:app", "--port", str(port), "--workers", "2")
    try:
        _read_until(proc, "serving pidapp:app", 2)
        first = _answers(port, 2)
        assert len(first) == 2
        victim = int(min(first).split(":")[1])
        os.kill(victim, signal.SIGKILL)
        _read_until(proc, "restarting")
        _read_until(proc, "serving pidapp:app")
        now = _answers(port, 2)
        assert len(now) == 2 and f"a:{victim}" not in now
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_a_worker_that_cannot_import_the_app_stops_the_server(tmp_path: Path) -> None:
    proc = _threaded(tmp_path, "nosuchmodule_xyz:app", "--port", "0", "--workers", "2")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert 'could not import module "nosuchmodule_xyz"' in err
    assert "while starting; stopping" in err


def test_reload_serves_the_changed_app(tmp_path: Path) -> None:
    app = tmp_path / "pidapp.py"
    _write(app, "v1")
    port = _free_port()
    proc = _threaded(tmp_path, "pidapp:app", "--port", str(port), "--reload")
    try:
        _read_until(proc, "serving pidapp:app")
        assert httpx.get(f"http://127.0.0.1:{port}/").text.startswith("v1:")
        _write(app, "v2")
        _read_until(proc, "serving pidapp:app")
        assert httpx.get(f"http://127.0.0.1:{port}/").text.startswith("v2:")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
