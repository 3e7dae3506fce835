"""WSGI server benchmark: a hello-world app under wrk, 50 keep-alive connections, one run.

Servers (each in its own process, pinned to CPU 0 with ``taskset``; wrk on CPU 1):
tether-threaded, waitress, gunicorn (gthread), cheroot, granian (WSGI interface, the upper
anchor), and a floor: a selectors loop plus worker threads that speaks no HTTP (it answers every
``\\r\\n\\r\\n`` with canned bytes), the cost of the architecture without a protocol. All use the
same number of worker threads. "realistic mix" rows send 2,000 distinct request heads in turn
(bench/traffic.py) instead of one repeated GET.

Each line ends in ``ratio=<requests/s over waitress's>`` (mix rows: over waitress's on the same
mix); each server's figure is the median of ``rounds`` interleaved runs. Each line also shows the server's CPU time per request (from
``/proc``), which a busy shared machine disturbs far less than requests/s: when wrk's own core is
contended the servers are client-bound and the requests/s ratios shrink towards 1.

Run alone: ``python bench/_wsgi_servers.py [--duration 5] [--rounds 3]``.
``bench/server.py`` imports :func:`run_wsgi_group`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench import _core as core
    from bench import _harness as harness
else:  # run as a script or imported by server.py or a server: bench/ is on sys.path
    import _core as core
    import _harness as harness

HERE = os.path.dirname(os.path.abspath(__file__))
THREADS = 4
CONNECTIONS = 50
BODY = b"Hello, world!"
#: The tether-threaded row with --metrics-port (same options otherwise).
METRICS = "tether-threaded, metrics"


def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """The benchmarked application."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [BODY]


# ---- the floor: selectors + threads, no HTTP ----------------------------------------------------

_CANNED = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n" + BODY


def floor_server(port: int, threads: int) -> None:
    """Accept, read until an empty line, let a worker thread send canned bytes. No parsing."""
    selector = selectors.DefaultSelector()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1024)
    listener.setblocking(False)
    selector.register(listener, selectors.EVENT_READ, None)
    jobs: queue.SimpleQueue[tuple[socket.socket, int]] = queue.SimpleQueue()
    buffers: dict[socket.socket, bytes] = {}

    def worker() -> None:
        while True:
            sock, count = jobs.get()
            with contextlib.suppress(OSError):
                sock.send(_CANNED * count)

    for _ in range(threads):
        threading.Thread(target=worker, daemon=True).start()
    while True:
        for key, _ in selector.select():
            if key.data is None:
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                buffers[conn] = b""
                selector.register(conn, selectors.EVENT_READ, conn)
                continue
            conn = key.data
            try:
                data = conn.recv(65536)
            except OSError:
                data = b""
            if not data:
                selector.unregister(conn)
                buffers.pop(conn, None)
                conn.close()
                continue
            pending = buffers[conn] + data
            count = pending.count(b"\r\n\r\n")
            buffers[conn] = pending[pending.rfind(b"\r\n\r\n") + 4 :] if count else pending
            if count:
                jobs.put((conn, count))


# ---- running the servers -------------------------------------------------------------------------


#: Rows whose wrk run cycles through distinct request heads (bench/traffic.py).
MIX = ", realistic mix"


def _commands(port: int) -> dict[str, list[str]]:
    py = sys.executable
    bind = f"127.0.0.1:{port}"
    commands = {
        "tether-threaded": [
            py,
            "-m",
            "tether_threaded._cli",
            "_wsgi_servers:app",
            "--port",
            str(port),
            "--threads",
            str(THREADS),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        "waitress": [
            py,
            "-c",
            "import logging,waitress,_wsgi_servers as w;logging.disable(logging.WARNING);"
            f"waitress.serve(w.app,host='127.0.0.1',port={port},threads={THREADS},"
            "connection_limit=1000,_quiet=True)",
        ],
        "gunicorn-gthread": [
            py,
            "-m",
            "gunicorn",
            "-k",
            "gthread",
            "-w",
            "1",
            "--threads",
            str(THREADS),
            "-b",
            bind,
            "--log-level",
            "warning",
            "_wsgi_servers:app",
        ],
        "cheroot": [
            py,
            "-c",
            "from cheroot import wsgi;import _wsgi_servers as w;"
            f"wsgi.Server(('127.0.0.1',{port}),w.app,numthreads={THREADS}).start()",
        ],
        "floor (selectors+threads, no HTTP)": [
            py,
            "-c",
            f"import _wsgi_servers as w;w.floor_server({port},{THREADS})",
        ],
        "granian (wsgi)": [
            py,
            *("-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port)),
            *("--workers", "1", "--blocking-threads", str(THREADS), "--log-level", "warning"),
            "_wsgi_servers:app",
        ],
    }
    commands["tether-threaded" + MIX] = commands["tether-threaded"]
    # --metrics-port on its own listener: the cost of metrics is this row against the first.
    commands[METRICS] = [*commands["tether-threaded"], "--metrics-port", str(harness.free_port())]
    commands["waitress" + MIX] = commands["waitress"]
    return commands


def _mix_script() -> str:
    """A wrk script cycling through 2,000 distinct GET heads (bench/traffic.py)."""
    import tempfile

    import traffic  # type: ignore[import-not-found]

    path = os.path.join(tempfile.gettempdir(), "tether-bench-mix.lua")
    with open(path, "w") as f:
        f.write(traffic.wrk_lua(traffic.get_heads(2000, seed=1)))
    return path


def _measure(
    command: list[str], port: int, duration: float, script: str | None = None
) -> tuple[float, float]:
    """(requests/s, microseconds of server CPU per request) for one server."""
    run = harness.measure(
        command,
        port,
        duration,
        app_dir=HERE,
        connections=CONNECTIONS,
        connect_timeout=0.5,
        stop_signal=signal.SIGTERM,
        stop_timeout=10.0,
        missing_cpu=0.0,
        full_error_report=True,
        script=script,
    )
    return run.requests_per_second, run.cpu_seconds / max(run.requests, 1) * 1e6


def run_wsgi_group(duration: float, rounds: int = 3, rows: str | None = None) -> list[str]:
    """Benchmark every server (``rows``: only those whose name contains it, and waitress);
    one line per server ending in ``ratio=<vs waitress>``."""
    if shutil.which("wrk") is None:
        return ["wsgi: wrk is not installed; skipped ratio=0"]
    results: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    script = _mix_script()
    for _ in range(rounds):
        for name in _commands(0):
            if rows is not None and rows not in name and not name.startswith("waitress"):
                continue
            port = harness.free_port()
            command = _commands(port)[name]
            try:
                rate, cpu_per_request = _measure(
                    command, port, duration, script if MIX in name else None
                )
                results.setdefault(name, []).append(rate)
                cpu.setdefault(name, []).append(cpu_per_request)
            except (RuntimeError, subprocess.CalledProcessError) as exc:
                sys.stderr.write(f"{name}: {exc}\n")
    medians = {name: statistics.median(values) for name, values in results.items() if values}
    lines = []
    for name, rate in medians.items():
        base = medians.get("waitress" + MIX if MIX in name else "waitress")
        ratio = rate / base if base else 0.0
        cpu_us = statistics.median(cpu[name])
        lines.append(
            f"wsgi hello-world, {CONNECTIONS} keep-alive conns, {THREADS} threads: "
            f"{name:<36} {rate:>7.0f} req/s {cpu_us:>6.1f} us CPU/req ratio={ratio:.2f}"
        )
    if METRICS in medians and "tether-threaded" in medians:
        # Issue 15's bar: metrics on cost at most 5% of the requests per second.
        on, off = medians[METRICS], medians["tether-threaded"]
        cpu_on, cpu_off = statistics.median(cpu[METRICS]), statistics.median(cpu["tether-threaded"])
        lines.append(f"tether-threaded, metrics on / off              ratio={on / off:.2f}")
        lines.append(f"tether-threaded, metrics on / off, CPU/request ratio={cpu_on / cpu_off:.2f}")
    return lines


def main() -> None:
    """Command line: print the group's lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--core", choices=core.CHOICES, default="pure", help=core.HELP)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs per server")
    parser.add_argument(
        "--rows", default=None, help="only the rows whose name contains this (and waitress's)"
    )
    args = parser.parse_args()
    print(core.use(args.core), flush=True)
    for line in run_wsgi_group(args.duration, args.rounds, args.rows):
        print(line, flush=True)


if __name__ == "__main__":
    main()
