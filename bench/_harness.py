"""The harness ``server.py`` and ``_wsgi_servers.py`` share: run a server, drive it with wrk.

A server command runs in its own process, pinned with ``taskset`` to one CPU where the machine has
two; wrk drives it over 127.0.0.1 from the other CPU; the server's CPU time (its children's
included) comes from Linux ``/proc``. Where the two scripts differ (connections, timeouts, how a
server is stopped, how wrk's errors are reported), the setting is an argument.
"""

from __future__ import annotations

import functools
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

_REQUESTS_PER_SECOND = re.compile(r"Requests/sec:\s+([\d.]+)")
_REQUESTS = re.compile(r"(\d+) requests in")
_ERRORS = re.compile(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)")


class WrkResult(NamedTuple):
    """What one wrk run reported."""

    requests_per_second: float
    requests: int


class Measurement(NamedTuple):
    """One server's measured wrk run (after a warm-up run)."""

    requests_per_second: float
    requests: int
    cpu_seconds: float  # the server's CPU time (its descendants' included) during the run
    seconds: int  # how long wrk ran: ``wrk_seconds(duration)``


#: Ports this process has handed out: the kernel may offer a port again until someone binds it,
#: and two servers of one run (a server and its --metrics-port) must not be given the same one.
_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, never one handed out before."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def pin(cpu: int) -> list[str]:
    """A ``taskset`` prefix pinning a command to ``cpu``; empty without taskset or a second CPU."""
    if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return []
    return ["taskset", "-c", str(cpu)]


def wait_listening(
    port: int,
    proc: subprocess.Popen[bytes],
    *,
    timeout: float = 15.0,
    connect_timeout: float = 0.2,
) -> None:
    """Return once 127.0.0.1:``port`` accepts a connection.

    RuntimeError if ``proc`` exits first or ``timeout`` seconds pass; ``connect_timeout`` bounds
    each connection attempt.
    """
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=connect_timeout):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start listening")


def lockstep(socks: list[socket.socket], heads: list[bytes], start: int, count: int) -> int:
    """Send ``count`` requests over ``socks``, one at a time on each connection: every
    connection sends its next head (``heads`` in turn from ``start``), then each response is
    read to the benchmark apps' ``Hello, world!`` body. Returns where the heads go on."""
    n = start
    for _ in range(count // len(socks)):
        for sock in socks:
            sock.sendall(heads[n % len(heads)])
            n += 1
        for sock in socks:
            data = b""
            while not data.endswith(b"Hello, world!"):
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError("the server closed a connection")
                data += chunk
    return n


def wrk_seconds(duration: float) -> int:
    """How long wrk runs for a requested ``duration``: whole seconds, at least one."""
    return max(1, round(duration))


def run_wrk(
    port: int,
    duration: float,
    *,
    connections: int = 50,
    cpu: int = 1,
    full_error_report: bool = False,
    script: str | None = None,
) -> WrkResult:
    """Run wrk (one thread, ``connections`` keep-alive connections, pinned to ``cpu``) on port.

    It runs ``wrk_seconds(duration)`` against ``http://127.0.0.1:<port>/``. When wrk reports
    errors, stderr gets its first error line, or its whole output with ``full_error_report``.
    ``script`` is a wrk Lua script (``-s``), e.g. one cycling through distinct request heads.
    RuntimeError if the output cannot be read; CalledProcessError if wrk fails.
    """
    out = subprocess.run(
        [
            *pin(cpu),
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{wrk_seconds(duration)}s",
            *(["-s", script] if script else []),
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = _REQUESTS_PER_SECOND.search(out)
    count = _REQUESTS.search(out)
    if rate is None or count is None:
        raise RuntimeError(f"could not read wrk output:\n{out}")
    errors = _ERRORS.search(out)
    if errors is not None:
        if full_error_report:
            sys.stderr.write(f"wrk reported errors:\n{out}\n")
        else:
            print(f"  (wrk reported: {errors.group(0)})", file=sys.stderr)
    return WrkResult(float(rate.group(1)), int(count.group(1)))


def cpu_seconds(pid: int, *, missing: float = math.nan) -> float:
    """User plus system CPU seconds of process ``pid`` and all its descendants (Linux ``/proc``).

    Descendants count because some servers (gunicorn) serve from a child process. ``missing``
    when there is no ``/proc`` or no such process.
    """
    try:
        entries = os.listdir("/proc")
    except OSError:
        return missing
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    if pid not in times:
        return missing
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo.extend(children.get(current, ()))
    return total


def measure(
    command: list[str],
    port: int,
    duration: float,
    *,
    app_dir: Path | str,
    connections: int = 50,
    server_cpu: int = 0,
    wrk_cpu: int = 1,
    connect_timeout: float = 0.2,
    server_stderr: int = subprocess.DEVNULL,
    stop_signal: signal.Signals = signal.SIGINT,
    stop_timeout: float = 5.0,
    missing_cpu: float = math.nan,
    full_error_report: bool = False,
    script: str | None = None,
) -> Measurement:
    """Start ``command`` listening on ``port``, warm it up, measure one wrk run, stop it.

    The server runs in ``app_dir`` with ``app_dir`` first on PYTHONPATH, pinned to ``server_cpu``,
    its stdout discarded and its stderr going to ``server_stderr``. Once it listens
    (:func:`wait_listening` with ``connect_timeout``), wrk runs one second to warm it up, then
    ``duration`` seconds measured, with the server's CPU time (:func:`cpu_seconds` with
    ``missing_cpu``) around that run. Then ``stop_signal`` stops it, ``stop_timeout`` seconds
    before a kill. ``connections``, ``wrk_cpu``, ``full_error_report`` and ``script`` go to
    :func:`run_wrk`.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(app_dir), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen(
        [*pin(server_cpu), *command],
        cwd=app_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=server_stderr,
    )
    try:
        wait_listening(port, proc, connect_timeout=connect_timeout)
        wrk = functools.partial(
            run_wrk,
            port,
            connections=connections,
            cpu=wrk_cpu,
            full_error_report=full_error_report,
            script=script,
        )
        wrk(1)  # warm-up
        before = cpu_seconds(proc.pid, missing=missing_cpu)
        result = wrk(duration)
        cpu = cpu_seconds(proc.pid, missing=missing_cpu) - before
        return Measurement(result.requests_per_second, result.requests, cpu, wrk_seconds(duration))
    finally:
        stop(proc, stop_signal, stop_timeout)


def stop(
    proc: subprocess.Popen[bytes],
    stop_signal: signal.Signals = signal.SIGINT,
    timeout: float = 5.0,
) -> None:
    """Stop a server with ``stop_signal``; kill it if it is still running ``timeout`` s later."""
    proc.send_signal(stop_signal)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
