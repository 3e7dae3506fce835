"""Helpers for tests that run a server command line in a real subprocess."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: An ASGI app for command-line tests: ``?seconds`` makes it print "in app" and wait that long
#: before answering "done"; ``x-pid`` tells which process answered.
SLOW_APP = """
import os
import anyio

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    delay = float(scope["query_string"] or b"0")
    if delay:
        print("in app", flush=True)
        await anyio.sleep(delay)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"4"), (b"x-pid", str(os.getpid()).encode())]})
    await send({"type": "http.response.body", "body": b"done"})
"""

#: An ASGI app whose lifespan startup fails.
FAILING_STARTUP = """
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
"""


#: What the start-up line of either server says (tether_server.startup.running_message):
#: "Tether running on URL with MODULE:APP (ASGI, asyncio; Press CTRL+C to quit)".
RUNNING = "Tether running on"

#: The last line either server logs once shut down (tether_server.startup.STOPPED_MESSAGE).
STOPPED = "Tether stopped"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: The packages of this checkout, first on a subprocess's path: an installed copy (an editable
#: install of another checkout) must not be what a test runs.
SOURCES = [
    ROOT / "packages" / name / "src"
    for name in ("core", "server-common", "server-asyncio", "server-threaded")
]


def spawn(
    module: str,
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    pass_fds: tuple[int, ...] = (),
) -> subprocess.Popen[str]:
    """``python -m module *args`` in ``cwd`` (importable from there), stdout and stderr piped;
    ``env`` adds variables, ``pass_fds`` are inherited."""
    path = [str(cwd), *map(str, SOURCES), str(ROOT)]
    variables = dict(os.environ, PYTHONPATH=os.pathsep.join(path), **(env or {}))
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=variables,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        pass_fds=pass_fds,
    )


#: A WSGI app whose ``/slow`` says "in app" and then waits ten minutes; anything else is
#: answered at once.
SLOW_WSGI = """
import time

def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        print("in app", flush=True)
        time.sleep(600)
    start_response("200 OK", [("Content-Length", "4")])
    return [b"done"]
"""


def spawn_server(
    server: str, cwd: Path, apps: tuple[str, str], *args: str
) -> subprocess.Popen[str]:
    """``server`` ("asyncio", "trio" or "threaded") serving one of ``apps`` (an ASGI and a
    WSGI module's source, written to ``cwd``) with ``args``: tether serve with ``--backend``,
    or tether-threaded with four threads. Skips a trio server when trio is not installed."""
    (cwd / "spawned_asgi.py").write_text(apps[0])
    (cwd / "spawned_wsgi.py").write_text(apps[1])
    if server == "threaded":
        return spawn("tether_threaded", cwd, "spawned_wsgi:app", "--threads", "4", *args)
    if server == "trio":
        pytest.importorskip("trio")
    return spawn("tether_asyncio", cwd, "serve", "spawned_asgi:app", "--backend", server, *args)


@contextlib.contextmanager
def reaped(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """``proc`` for the block; killed (if still running) and waited for after it."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def read_until(proc: subprocess.Popen[str], text: str, count: int = 1) -> list[str]:
    """Read stderr lines until ``count`` of them contain ``text``; return the lines read."""
    assert proc.stderr is not None
    lines: list[str] = []
    for line in proc.stderr:
        lines.append(line)
        if sum(text in seen for seen in lines) >= count:
            return lines
    raise AssertionError(f"server exited ({proc.wait()}) before {text!r}: {''.join(lines)}")


def touch_with(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with a modification time later than the last one, even on a
    file system whose clock is coarse."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


class LogLines:
    """A process's stderr (or stdout), read by a thread: a wait for a line is bounded in time."""

    def __init__(self, proc: subprocess.Popen[str], stdout: bool = False) -> None:
        stream = proc.stdout if stdout else proc.stderr
        assert stream is not None
        self._proc = proc
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._ended = False
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Iterator[str]) -> None:
        for line in stream:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    @property
    def text(self) -> str:
        """Everything read so far."""
        with self._changed:
            return "".join(self._lines)

    def count(self, text: str) -> int:
        """How many lines read so far contain ``text``."""
        with self._changed:
            return sum(text in line for line in self._lines)

    def wait_for(self, text: str, count: int = 1, timeout: float = 30.0) -> None:
        """Wait until ``count`` lines contain ``text``; fail after ``timeout`` seconds, at EOF,
        or a few seconds after the process exited (its children may hold the pipe open)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(text in line for line in self._lines) < count:
                now = time.monotonic()
                if self._proc.poll() is not None:
                    deadline = min(deadline, now + 3.0)
                if self._ended or now >= deadline:
                    raise AssertionError(
                        f"no {count} x {text!r} (exit status {self._proc.poll()}): "
                        + "".join(self._lines)
                    )
                self._changed.wait(min(deadline - now, 0.25))

    def finish(self, timeout: float = 10.0) -> str:
        """Everything the process wrote, once it has closed stderr."""
        self._thread.join(timeout)
        return self.text


def gone(pid: int) -> bool:
    """Whether process ``pid`` has exited (a zombie nobody reaps counts: PID 1 may not reap)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll ``predicate`` (bounded by ``timeout`` seconds); whether it became true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def run_example(name: str, env: dict[str, str], *plugins: str) -> subprocess.CompletedProcess[str]:
    """Run ``examples/<name>`` under pytest in a subprocess, as a user would (from the examples
    folder, this checkout's packages importable, ``env`` added), with ``-p`` ``plugins``."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         *(arg for plugin in plugins for arg in ("-p", plugin)), str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=ROOT / "examples",
        env={"PYTHONPATH": os.pathsep.join(map(str, [*SOURCES, ROOT])), **env},
    )  # fmt: skip
