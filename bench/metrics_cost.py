"""What ``--metrics-port`` costs a request: server instructions counted by callgrind.

Run: ``python bench/metrics_cost.py [--server asyncio|threaded|both] [--requests N] [--rounds R]``

requests/s on a shared machine moves by more than the 5% bar from one run to the next, so this
counts instructions instead. Each server runs the hello-world app (``bench/server.py``'s ASGI
app, ``bench/_wsgi_servers.py``'s WSGI app) under ``valgrind --tool=callgrind`` with
instrumentation off; one keep-alive client warms it up, then ``callgrind_control`` turns
instrumentation on and zeroes the counts, the client sends N requests one after another, and
the dump's total over N is the instructions per request (every thread of the server counted,
the metrics listener's included). Metrics off and on alternate, ``--rounds`` times each; the
line per server gives the medians and the on/off ratio.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench import _core as core
    from bench import _harness as harness
else:  # run as a script: bench/ is on sys.path
    import _core as core
    import _harness as harness

HERE = Path(__file__).resolve().parent
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: metrics-cost\r\n\r\n"


def _command(server: str, port: int, metrics: bool) -> list[str]:
    py = sys.executable
    common = ["--port", str(port), "--no-access-log", "--log-level", "warning"]
    if server == "asyncio":
        command = [py, "-m", "tether_asyncio", "serve", "server:app", "--loop", "asyncio"]
    else:
        command = [py, "-m", "tether_threaded", "_wsgi_servers:app", "--threads", "4"]
    command += common
    if metrics:
        command += ["--metrics-port", str(harness.free_port())]
    return command


def _exchange(sock: socket.socket, count: int) -> None:
    """``count`` requests on ``sock``, each answered before the next (13-byte body)."""
    for _ in range(count):
        sock.sendall(REQUEST)
        data = b""
        while not (data.endswith(b"Hello, world!") and b"\r\n\r\n" in data):
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError("the server closed the connection")
            data += chunk


def _control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=120)


def instructions_per_request(server: str, metrics: bool, requests: int, keep: bool) -> float:
    """One server process under callgrind: instructions per request over ``requests`` (``keep``:
    leave the dump for ``callgrind_annotate`` and print where)."""
    port = harness.free_port()
    out = Path(tempfile.mkdtemp(prefix="tether-callgrind-"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen(
        [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}/callgrind.out.%p",
            *_command(server, port, metrics),
        ],
        cwd=HERE,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=60)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the server did not start under valgrind") from None
                time.sleep(0.2)
        with sock:
            _exchange(sock, 200)  # warm-up: imports, caches, specialisation
            pid = str(proc.pid)
            _control("--instr=on", pid)
            _control("--zero", pid)
            _exchange(sock, requests)
            _control("--dump", pid)
        text = (out / f"callgrind.out.{pid}.1").read_text(errors="replace")
        match = re.search(r"^(?:summary|totals): (\d+)", text, re.MULTILINE)
        if match is None:
            raise RuntimeError("no total in the callgrind dump")
        total = int(match.group(1))
        return total / requests
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if keep:
            print(f"  {server}, metrics {'on' if metrics else 'off'}: {out}", file=sys.stderr)
        else:
            shutil.rmtree(out, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--core", choices=core.CHOICES, default="pure", help=core.HELP)
    parser.add_argument("--server", choices=("asyncio", "threaded", "both"), default="both")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2, help="off/on pairs; medians reported")
    parser.add_argument("--keep", action="store_true", help="keep the callgrind dumps")
    args = parser.parse_args()
    print(core.use(args.core), flush=True)
    servers = ("asyncio", "threaded") if args.server == "both" else (args.server,)
    for server in servers:
        counts: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.rounds):
            for metrics in (False, True):
                count = instructions_per_request(server, metrics, args.requests, args.keep)
                counts[metrics].append(count)
        off, on = statistics.median(counts[False]), statistics.median(counts[True])
        print(
            f"{server:<9} metrics off={off:>9.0f} on={on:>9.0f} instructions/request "
            f"on/off={on / off:.3f} (+{on - off:.0f}); rounds: off "
            + " ".join(f"{n:.0f}" for n in counts[False])
            + ", on "
            + " ".join(f"{n:.0f}" for n in counts[True]),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
