"""Helpers for tests that run a server command line in a real subprocess."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(module: str, cwd: Path, *args: str) -> subprocess.Popen[str]:
    """``python -m module *args`` in ``cwd`` (importable from there), stdout and stderr piped."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(cwd), str(ROOT)]))
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


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
