"""A lone server (no --workers) whose loop is blocked still ends a stop: at the latest
--timeout-graceful-shutdown + STOP_SLACK seconds after the signal, status 1, one error line.

Under --workers the supervisor kills such a worker (test_tls_and_processes_audit); a lone
server had nobody to, and an async app calling ``time.sleep(600)`` (or spinning) kept it
running through SIGTERM until the app returned: a stop that systemd or Kubernetes could only
end with SIGKILL. tether-threaded's loop does not run the app, but a log handler stuck on its
sink blocks it the same way; a worker thread stuck in the app never held a stop (checked here).
"""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.processes import RUNNING, SLOW_WSGI, STOPPED, LogLines, free_port, reaped, spawn

pytestmark = pytest.mark.timeout(90)

#: The grace the servers run with; the watchdog acts 3 s (STOP_SLACK) after it.
GRACE = "0.5"

#: An ASGI app that blocks the event loop: a synchronous sleep, or a busy loop.
BLOCKING_ASGI = """
import sys, time

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    print("in app", flush=True)
    if scope["path"] == "/busy":
        while True:
            pass
    time.sleep(600)
"""

#: A WSGI app, and a log handler on tether's error log that blocks (a sink that stopped
#: answering) once the server says it is shutting down: the loop thread logs that line.
STUCK_LOG_WSGI = (
    """
import logging, time

class StuckSink(logging.Handler):
    def emit(self, record):
        if "shutting down" in record.getMessage():
            print("log handler stuck", flush=True)
            time.sleep(600)

logging.getLogger("tether.error").addHandler(StuckSink())
"""
    + SLOW_WSGI
)


def _spawn(tmp_path: Path, name: str, app: str, *command: str) -> tuple[subprocess.Popen[str], int]:
    (tmp_path / f"{name}.py").write_text(app)
    port = free_port()
    proc = spawn(
        command[0], tmp_path, *command[1:], f"{name}:app", "--port", str(port),
        "--timeout-graceful-shutdown", GRACE, "--no-access-log",
    )  # fmt: skip
    return proc, port


def _request(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def _asyncio_command(backend: str) -> tuple[str, ...]:
    if backend == "trio":
        pytest.importorskip("trio")
        return ("tether_asyncio", "serve", "--backend", "trio")
    if backend == "uvloop":
        pytest.importorskip("uvloop")
    return ("tether_asyncio", "serve", "--backend", "asyncio", "--loop", backend)


@pytest.mark.parametrize("path", ["/sleep", "/busy"])
@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_a_lone_server_blocked_by_its_app_ends_a_stop(
    tmp_path: Path, backend: str, path: str
) -> None:
    proc, port = _spawn(tmp_path, "blocking", BLOCKING_ASGI, *_asyncio_command(backend))
    with reaped(proc):
        log, out = LogLines(proc), LogLines(proc, stdout=True)
        log.wait_for(RUNNING)
        with _request(port, path):
            out.wait_for("in app")
            proc.send_signal(signal.SIGTERM)
            # A hang guard: without the watchdog the process ran on for the app's 600 s.
            status = proc.wait(30)
        err = log.finish()
    assert status == 1, err
    assert err.count("still running 3.5 s after SIGTERM") == 1, err
    assert "its event loop is blocked" in err
    assert STOPPED not in err


def test_a_lone_threaded_server_whose_loop_is_blocked_ends_a_stop(tmp_path: Path) -> None:
    proc, _ = _spawn(tmp_path, "stucklog", STUCK_LOG_WSGI, "tether_threaded")
    with reaped(proc):
        log, out = LogLines(proc), LogLines(proc, stdout=True)
        log.wait_for(RUNNING)
        proc.send_signal(signal.SIGTERM)
        out.wait_for("log handler stuck")
        status = proc.wait(30)  # a hang guard, as above
        err = log.finish()
    assert status == 1, err
    assert err.count("still running 3.5 s after SIGTERM") == 1, err


def test_a_threaded_worker_stuck_in_the_app_does_not_hold_a_stop(tmp_path: Path) -> None:
    # The loop gives the threads in the app what is left of the grace, and they are daemons:
    # the process ends at the grace, cleanly, before the watchdog would.
    app = STUCK_LOG_WSGI.replace("addHandler(StuckSink())", "addHandler(logging.NullHandler())")
    proc, port = _spawn(tmp_path, "stuckapp", app, "tether_threaded")
    with reaped(proc):
        log, out = LogLines(proc), LogLines(proc, stdout=True)
        log.wait_for(RUNNING)
        with _request(port, "/slow"):
            out.wait_for("in app")
            proc.send_signal(signal.SIGTERM)
            status = proc.wait(30)
        err = log.finish()
    assert status == 0, err
    assert "graceful shutdown timed out" in err
    assert "still running" not in err
    assert STOPPED in err
