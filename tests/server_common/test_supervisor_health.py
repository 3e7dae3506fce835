"""The supervisor's side of worker heartbeats and recycling, with stub workers that speak the
pipe protocol of tether_server.startup.WorkerLink: a worker that stops sending heartbeats is
killed and replaced; a worker that asks to be recycled gets its replacement first, then is
told to drain (SIGHUP)."""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether_server.supervisor import Supervisor

STUB = """
import os, signal, sys, time
from tether_server.startup import WorkerLink

argv = sys.argv
notify = int(argv[argv.index("--notify-fd") + 1])
mode, log = os.environ["STUB_MODE"], os.environ["STUB_LOG"]

def say(word):
    with open(log, "a") as f:
        f.write(f"{word} {os.getpid()}\\n")

def on_hup(signum, frame):
    say("drain")
    sys.exit(0)

signal.signal(signal.SIGHUP, on_hup)
link = WorkerLink(notify)
say("start")
link.serving()
first = not os.path.exists(log + ".recycled")
if mode == "recycle" and first:
    open(log + ".recycled", "w").close()
    link.recycle()
start = time.monotonic()
while True:
    now = time.monotonic()
    if mode == "hang" and first and now - start > 0.5:
        open(log + ".recycled", "w").close()
        time.sleep(3600)  # stuck: no more heartbeats
    link.heartbeat(now)
    time.sleep(0.05)
"""


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _wait_for(path: Path, predicate, timeout: float = 20.0) -> list[str]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = _lines(path)
        if predicate(lines):
            return lines
        time.sleep(0.05)
    raise AssertionError(_lines(path))


@pytest.fixture
def supervised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    (tmp_path / "stub.py").write_text(STUB)
    log = tmp_path / "events.log"
    monkeypatch.setenv("STUB_LOG", str(log))
    monkeypatch.setenv(
        "PYTHONPATH",
        str(Path(__file__).resolve().parents[2] / "packages/server-common/src")
        + ":"
        + str(Path(__file__).resolve().parents[2] / "packages/core/src"),
    )
    sock = socket.create_server(("127.0.0.1", 0))

    def run(mode: str) -> tuple[Path, Supervisor, threading.Thread]:
        monkeypatch.setenv("STUB_MODE", mode)
        supervisor = Supervisor([sys.executable, str(tmp_path / "stub.py")], 1,
                                healthcheck_timeout=1.0)  # fmt: skip
        thread = threading.Thread(target=supervisor.run, args=(sock.fileno(),), daemon=True)
        thread.start()
        return log, supervisor, thread

    yield run
    sock.close()


def _stop(supervisor: Supervisor, thread: threading.Thread) -> None:
    supervisor._on_signal(signal.SIGTERM, None)
    thread.join(15)
    assert not thread.is_alive()


def test_a_worker_that_stops_its_heartbeats_is_killed_and_replaced(supervised) -> None:  # type: ignore[no-untyped-def]
    log, supervisor, thread = supervised("hang")
    lines = _wait_for(log, lambda ls: sum(line.startswith("start") for line in ls) >= 2)
    first, second = [line.split()[1] for line in lines if line.startswith("start")][:2]
    assert first != second  # killed (no drain line: SIGKILL) and started again
    assert f"drain {first}" not in lines
    _stop(supervisor, thread)


def test_recycling_starts_the_replacement_before_the_old_worker_drains(supervised) -> None:  # type: ignore[no-untyped-def]
    log, supervisor, thread = supervised("recycle")
    lines = _wait_for(log, lambda ls: any(line.startswith("drain") for line in ls))
    starts = [line.split()[1] for line in lines if line.startswith("start")]
    assert len(starts) == 2
    assert lines.index(f"start {starts[1]}") < lines.index(f"drain {starts[0]}")
    _stop(supervisor, thread)
