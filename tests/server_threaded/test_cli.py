"""The tether-threaded command line: one clear line and status 1 for user mistakes, and a
graceful stop on SIGTERM / SIGINT."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.processes import RUNNING, STOPPED

HERE = Path(__file__).resolve().parent


def _run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(HERE) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "tether_threaded._cli", *args],
        check=False, capture_output=True, text=True, timeout=timeout, cwd=HERE, env=env,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no_such_module:app"], 'could not import module "no_such_module"'),
        (["cli_app:nothing"], 'attribute "nothing" not found in module "cli_app"'),
        (["threaded_helpers"], 'module "threaded_helpers" has no "application" or "app"'),
        (["cli_app:app", "--port", "0", "--ssl-certfile", "/nonexistent/cert.pem"], "no such file"),
        (["cli_app:app", "--port", "0", "--forwarded-allow-ips", "localhost"], "not an IP address"),
    ],
)
def test_user_mistakes_print_one_line_and_exit_1(args: list[str], message: str) -> None:
    result = _run(*args)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("tether-threaded: error: ")
    assert message in result.stderr


def test_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run("cli_app:app", "--port", str(port))
    assert result.returncode == 1
    assert "cannot bind to 127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_gracefully_after_requests_in_flight(signum: int) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(HERE) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "tether_threaded._cli", "cli_app:app", "--port", "0",
            "--root-path", "/base", "--threads", "2",
        ],
        stderr=subprocess.PIPE, text=True, cwd=HERE, env=env,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert RUNNING in line and "with cli_app:app" in line, line
        url = "http://" + line.rsplit("http://", 1)[1].split()[0]
        assert httpx.get(url + "/base/x").text == "/base|/x"
        results: list[httpx.Response] = []
        slow = threading.Thread(target=lambda: results.append(httpx.get(url + "/slow", timeout=20)))
        slow.start()
        while "slow request started" not in proc.stderr.readline():
            pass
        # The loop still serves while /slow is held by its worker.
        assert httpx.get(url + "/base/y").text == "/base|/y"
        proc.send_signal(signum)
        slow.join(20)
        assert proc.wait(20) == 0
        rest = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert results and results[0].status_code == 200
    assert "Traceback" not in rest
    assert STOPPED in rest


def test_factory_and_header_switches() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(HERE) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "tether_threaded._cli", "cli_app:create_app", "--factory",
            "--port", "0", "--no-date-header", "--no-server-header", "--no-access-log",
        ],
        stderr=subprocess.PIPE, text=True, cwd=HERE, env=env,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        url = "http://" + line.rsplit("http://", 1)[1].split()[0]
        r = httpx.get(url + "/f")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert r.text == "|/f"
    assert "date" not in r.headers
    assert "server" not in r.headers
