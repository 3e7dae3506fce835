"""``tether serve --workers N`` in real subprocesses: sharing, restarting, stopping, failing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import (
    free_port,
    read_until,
    reaped,
    spawn,
    touch_with,
)

pytestmark = pytest.mark.timeout(120)


def _pids_serving(port: int, want: int, attempts: int = 400) -> set[int]:
    """Pids answering fresh connections, until ``want`` distinct ones (bounded)."""
    pids: set[int] = set()
    for _ in range(attempts):
        response = httpx.get(f"http://127.0.0.1:{port}/", headers={"Connection": "close"})
        pids.add(int(response.headers["x-pid"]))
        if len(pids) >= want:
            break
    return pids


@pytest.fixture
def workers(app_dir: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    with reaped(
        spawn(
            "tether_asyncio", app_dir, "serve", "slowapp:app", "--port", str(port), "--workers", "2"
        )
    ) as proc:
        read_until(proc, "running on", 2)
        yield proc, port


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_two_workers_share_the_port_and_stop_together(
    workers: tuple[subprocess.Popen[str], int],
) -> None:
    proc, port = workers
    pids = _pids_serving(port, 2)
    assert len(pids) == 2
    assert proc.pid not in pids
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert all(_gone(pid) for pid in pids)


def test_a_worker_that_dies_is_restarted(workers: tuple[subprocess.Popen[str], int]) -> None:
    proc, port = workers
    first = _pids_serving(port, 2)
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    read_until(proc, "restarting")
    read_until(proc, "running on")
    now = _pids_serving(port, 2)
    assert len(now) == 2
    assert victim not in now
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0


def test_sigint_lets_a_request_in_flight_finish(
    workers: tuple[subprocess.Popen[str], int],
) -> None:
    proc, port = workers
    result: list[httpx.Response] = []
    thread = threading.Thread(
        target=lambda: result.append(httpx.get(f"http://127.0.0.1:{port}/?1.0", timeout=30))
    )
    thread.start()
    assert proc.stdout is not None
    assert proc.stdout.readline() == "in app\n"
    proc.send_signal(signal.SIGINT)
    thread.join(30)
    assert proc.wait(30) == 0
    assert result and result[0].status_code == 200


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["nosuchmodule_xyz:app"], 1, 'could not import module "nosuchmodule_xyz"'),
        (["badstart:app", "--lifespan", "on"], 3, "application startup failed"),
    ],
)
def test_a_worker_failing_to_start_stops_the_server(
    app_dir: Path, args: list[str], status: int, message: str
) -> None:
    proc = spawn("tether_asyncio", app_dir, "serve", *args, "--port", "0", "--workers", "2")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status
    assert message in err
    assert "while starting; stopping" in err
    assert "Traceback" not in err


def test_a_port_in_use_is_reported_once_before_any_worker(app_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = spawn(
            "tether_asyncio", app_dir, "serve", "slowapp:app", "--port", str(port), "--workers", "2"
        )
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert err.strip() == f"tether: error: cannot bind to 127.0.0.1:{port}: Address already in use"


VERSIONED_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b"%s"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
"""


def test_reload_restarts_on_a_change_and_waits_out_a_broken_file(tmp_path: Path) -> None:
    app = tmp_path / "versioned.py"
    touch_with(app, VERSIONED_APP % "v1")
    port = free_port()
    proc = spawn(
        "tether_asyncio",
        tmp_path,
        "serve",
        "versioned:app",
        "--port",
        str(port),
        "--reload",
        "--lifespan",
        "off",
    )
    url = f"http://127.0.0.1:{port}/"
    with reaped(proc):
        read_until(proc, "running on")
        assert httpx.get(url).text == "v1"
        touch_with(app, VERSIONED_APP % "v2")
        read_until(proc, "running on")
        assert httpx.get(url).text == "v2"
        touch_with(app, "def broken(:\n")
        read_until(proc, "waiting for a change")
        touch_with(app, VERSIONED_APP % "v3")
        read_until(proc, "running on")
        assert httpx.get(url).text == "v3"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


def test_reload_and_workers_together_are_refused(app_dir: Path) -> None:
    proc = spawn(
        "tether_asyncio",
        app_dir,
        "serve",
        "slowapp:app",
        "--port",
        "0",
        "--reload",
        "--workers",
        "2",
    )
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert err.strip() == "tether: error: --reload and --workers cannot be used together"
