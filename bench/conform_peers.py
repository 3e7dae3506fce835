"""``tether conform`` against other Python servers: what each accepts that it should refuse.

Each server runs the same application (it reads the whole request body, then answers 200
with its size; a WebSocket at any path echoes: ``tests/conform/apps.py``) on 127.0.0.1, one
process, default settings except a short idle timeout where the server has one; then
``tether conform --json`` runs every group (``--ws-path /`` where the server speaks
WebSocket; ``--slow`` adds the write-timeout probe). Prints a Markdown table (the README's)
and, per server, the ids of the MUSTs it broke. A server whose package is not installed
is skipped with a note.

Run: ``python bench/conform_peers.py [--slow-wait 12] [--slow] [--only NAME ...]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SOURCES = [
    ROOT / "packages" / n / "src"
    for n in ("core", "server-common", "server-asyncio", "server-threaded")
]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(map(str, [ROOT, *SOURCES])))


def commands(port: int) -> dict[str, list[str]]:
    """The command line of each server, serving the echo app on ``port``."""
    p = str(port)
    asgi, wsgi = "tests.conform.apps:asgi_echo_ws", "tests.conform.apps:wsgi_echo"
    uvicorn = [
        PY,
        "-m",
        "uvicorn",
        asgi,
        "--port",
        p,
        "--log-level",
        "warning",
        "--timeout-keep-alive",
        "5",
    ]
    return {
        "tether serve": [
            PY,
            "-m",
            "tether_asyncio",
            "serve",
            asgi,
            "--port",
            p,
            "--log-level",
            "warning",
        ],
        "tether-threaded": [
            PY,
            "-m",
            "tether_threaded",
            "tests.conform.apps:wsgi_echo_ws",
            "--port",
            p,
            "--log-level",
            "warning",
        ],
        "uvicorn (h11)": [*uvicorn, "--http", "h11"],
        "uvicorn (httptools)": [*uvicorn, "--http", "httptools"],
        "hypercorn": [PY, "-m", "hypercorn", asgi, "--bind", f"127.0.0.1:{p}"],
        "waitress": [PY, "-m", "waitress", "--listen", f"127.0.0.1:{p}", wsgi],
        "gunicorn (sync)": [PY, "-m", "gunicorn", "-b", f"127.0.0.1:{p}", "-w", "1", wsgi],
        "granian (asgi)": [
            PY,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            p,
            "--workers",
            "1",
            "--log-level",
            "warning",
            asgi,
        ],
        "daphne": [PY, "-m", "daphne", "-b", "127.0.0.1", "-p", p, asgi],
    }


#: The servers that speak WebSocket (the others get no websocket group).
WEBSOCKET = {
    "tether serve",
    "tether-threaded",
    "uvicorn (h11)",
    "uvicorn (httptools)",
    "hypercorn",
    "granian (asgi)",
    "daphne",
}


def installed(command: list[str]) -> bool:
    """Whether the module ``python -m`` would run is importable here."""
    return importlib.util.find_spec(command[2]) is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(command: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        command, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"{command[2]} exited with {proc.returncode}") from None
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def conform(port: int, slow_wait: float, extra: list[str]) -> dict[str, object]:
    out = subprocess.run(
        [
            PY,
            "-m",
            "tether_asyncio",
            "conform",
            f"http://127.0.0.1:{port}/",
            "--json",
            "--slow-wait",
            str(slow_wait),
            *extra,
        ],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    report: dict[str, object] = json.loads(out.stdout)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow-wait", type=float, default=12.0)
    parser.add_argument("--only", action="append")
    parser.add_argument(
        "--slow", action="store_true", help="add the write-timeout probe (--slow-seconds 65)"
    )
    args = parser.parse_args()
    rows = []
    for name in commands(0):
        if args.only and name not in args.only:
            continue
        port = _free_port()
        command = commands(port)[name]
        if not installed(command):
            print(f"{name}: skipped ({command[2]} is not installed)", file=sys.stderr)
            continue
        extra = (["--ws-path", "/"] if name in WEBSOCKET else []) + (
            ["--slow"] if args.slow else []
        )
        try:
            with serving(command, port):
                report = conform(port, args.slow_wait, extra)
        except (RuntimeError, json.JSONDecodeError, subprocess.TimeoutExpired) as exc:
            print(f"{name}: could not run ({exc})", file=sys.stderr)
            continue
        results = report["results"]
        assert isinstance(results, list)
        by = {
            v: [r for r in results if r["verdict"] == v]
            for v in ("pass", "fail", "warn", "lenient", "info", "error")
        }
        fails = [f"{r['group'][0]}:{r['id']}" for r in by["fail"]]
        timeouts = {
            r["id"]: r["verdict"]
            for r in results
            if r["group"] in ("robustness", "write-timeout", "traffic")
        }
        ws = [r for r in results if r["group"] == "websocket"]
        timeouts["ws"] = f"{sum(r['verdict'] == 'fail' for r in ws)} of {len(ws)}" if ws else "n/a"
        rows.append((name, len(results), {k: len(v) for k, v in by.items()}, fails, timeouts))
        print(f"{name}: MUST failures: {' '.join(fails) or 'none'}", file=sys.stderr)
        print(
            f"{name}: lenient: {' '.join(r['id'] for r in by['lenient']) or 'none'}",
            file=sys.stderr,
        )
        print(
            f"{name}: warnings: {' '.join(r['id'] for r in by['warn']) or 'none'}", file=sys.stderr
        )
    print(
        "| server | probes | pass | MUST failed | warn | lenient (MAY) | info | head timeout "
        "| idle close | write timeout | traffic (alone / pipelined) | WebSocket MUSTs failed |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, total, n, _fails, t in rows:
        print(
            f"| {name} | {total} | {n['pass']} | {n['fail']} | {n['warn']} | {n['lenient']} | {n['info']} "
            f"| {t.get('head-timeout', '?')} | {t.get('idle-timeout', '?')} "
            f"| {t.get('write-timeout', '?')} "
            f"| {t.get('traffic-keep-alive', '?')} / {t.get('traffic-pipelined', '?')} "
            f"| {t['ws']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
