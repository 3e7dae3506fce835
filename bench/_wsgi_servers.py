"""WSGI server benchmark: a hello-world app under wrk, 50 keep-alive connections, one run.

Servers (each in its own process, pinned to CPU 0 with ``taskset``; wrk on CPU 1):
tether-threaded, waitress, gunicorn (gthread), cheroot, and a floor: a selectors loop plus
worker threads that speaks no HTTP (it answers every ``\\r\\n\\r\\n`` with canned bytes), the
cost of the architecture without a protocol. All use the same number of worker threads.

Each line ends in ``ratio=<requests/s over waitress's>``; each server's figure is the median
of ``rounds`` interleaved runs. Each line also shows the server's CPU time per request (from
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
import re
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
THREADS = 4
CONNECTIONS = 50
BODY = b"Hello, world!"


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _commands(port: int) -> dict[str, list[str]]:
    py = sys.executable
    bind = f"127.0.0.1:{port}"
    return {
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
    }


def _pin(cpu: int) -> list[str]:
    return (
        ["taskset", "-c", str(cpu)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []
    )


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start listening")


def _wrk(port: int, duration: float) -> tuple[float, int]:
    out = subprocess.run(
        [
            *_pin(1),
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{max(1, round(duration))}s",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    if match is None or count is None:
        raise RuntimeError(f"cannot read wrk output: {out!r}")
    if "Non-2xx" in out or "Socket errors" in out:
        sys.stderr.write(f"wrk reported errors:\n{out}\n")
    return float(match.group(1)), int(count.group(1))


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and its descendants (Linux /proc; else 0.0).

    Descendants count because gunicorn serves from a worker process under its arbiter.
    """
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            parents[int(entry)] = int(fields[1])
    tree = {pid}
    grew = True
    while grew:
        grew = False
        for child, parent in parents.items():
            if parent in tree and child not in tree:
                tree.add(child)
                grew = True
    total = 0.0
    for member in tree:
        fields = _stat(member)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _measure(name: str, command: list[str], port: int, duration: float) -> tuple[float, float]:
    """(requests/s, microseconds of server CPU per request) for one server."""
    env = dict(os.environ)
    env["PYTHONPATH"] = HERE + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [*_pin(0), *command],
        cwd=HERE,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, proc)
        _wrk(port, 1)  # warm-up
        before = _cpu_seconds(proc.pid)
        rate, count = _wrk(port, duration)
        cpu = (_cpu_seconds(proc.pid) - before) / max(count, 1) * 1e6
        return rate, cpu
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_wsgi_group(duration: float, rounds: int = 3) -> list[str]:
    """Benchmark every server; one line per server ending in ``ratio=<vs waitress>``."""
    if shutil.which("wrk") is None:
        return ["wsgi: wrk is not installed; skipped ratio=0"]
    results: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    for _ in range(rounds):
        for name in _commands(0):
            port = _free_port()
            command = _commands(port)[name]
            try:
                rate, cpu_per_request = _measure(name, command, port, duration)
                results.setdefault(name, []).append(rate)
                cpu.setdefault(name, []).append(cpu_per_request)
            except (RuntimeError, subprocess.CalledProcessError) as exc:
                sys.stderr.write(f"{name}: {exc}\n")
    medians = {name: statistics.median(values) for name, values in results.items() if values}
    base = medians.get("waitress")
    lines = []
    for name, rate in medians.items():
        ratio = rate / base if base else 0.0
        cpu_us = statistics.median(cpu[name])
        lines.append(
            f"wsgi hello-world, {CONNECTIONS} keep-alive conns, {THREADS} threads: "
            f"{name:<36} {rate:>7.0f} req/s {cpu_us:>6.1f} us CPU/req ratio={ratio:.2f}"
        )
    return lines


def main() -> None:
    """Command line: print the group's lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs per server")
    args = parser.parse_args()
    for line in run_wsgi_group(args.duration, args.rounds):
        print(line, flush=True)


if __name__ == "__main__":
    main()
