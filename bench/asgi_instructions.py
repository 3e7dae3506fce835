"""Instructions per request of a running ASGI or WSGI server, counted by callgrind (deterministic).

Run: ``python bench/asgi_instructions.py [--requests N] [--server
tether|uvicorn|tether-threaded|floor] [--loop asyncio|uvloop|trio] [--access-log] [--mix]``

Wall-clock rates on a shared machine are noisy; user-space instruction counts are not (kernel
time, the same for every server, is left out). The server runs the hello-world app of
``server.py`` (lifespan on) under ``valgrind --tool=callgrind`` with instrumentation off; after
a warm-up, instrumentation is switched on (``callgrind_control -i on``), a client sends N
keep-alive requests over 8 connections in lockstep, the counts are dumped, and their total over
N is printed. The access log, when on, goes to a file, as a server's stderr does in production.
``--mix`` sends the 2,000 distinct GET heads of ``traffic.py`` (seed 1) in turn, as the
realistic rows of ``server.py`` and ``_wsgi_servers.py`` do, instead of one head repeated. The
WSGI server (tether-threaded) runs ``_wsgi_servers.py``'s hello-world app with its options (4
threads, no access log); its worker threads count too. Not waitress: under valgrind's one
thread at a time its loop spins (16M instructions a request), so its count says nothing.
``--server floor`` counts ``server.py``'s anyio floor (read, answer fixed bytes; on asyncio or
trio), the denominator of the floor ratios: ``--loop trio`` with ``tether`` runs ``--backend
trio``.
"""

from __future__ import annotations

import argparse
import glob
import os
import signal
import socket
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
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
CONNECTIONS = 8


def drive(port: int, requests: int, heads: list[bytes]) -> None:
    """Send ``requests`` requests over CONNECTIONS keep-alive connections, in lockstep."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
    try:
        harness.lockstep(socks, heads, 0, requests)
    finally:
        for sock in socks:
            sock.close()


def command(server: str, loop: str, access_log: bool, port: int) -> list[str]:
    if server == "tether-threaded":
        import _wsgi_servers  # type: ignore[import-not-found]  # bench/ is on sys.path

        return _wsgi_servers._commands(port)[server]
    if server == "floor":
        return [sys.executable, "server.py", "--serve-floor", str(port), "--floor-backend", loop]
    event_loop = ["--backend", "trio"] if loop == "trio" else ["--loop", loop]
    where = ["server:app", "--app-dir", str(HERE), "--port", str(port), *event_loop]
    if server == "tether":
        out = [sys.executable, "-m", "tether_asyncio", "serve", *where]
    else:
        out = [sys.executable, "-m", "uvicorn", *where, "--http", "httptools", "--ws", "none"]
    return out if access_log else [*out, "--no-access-log"]


def count(
    server: str, loop: str, access_log: bool, requests: int, heads: list[bytes] | None = None
) -> float:
    """Instructions per request."""
    heads = heads or [REQUEST]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = Path(tempfile.mkdtemp()) / "callgrind.out"
    log = open(Path(tempfile.gettempdir()) / "tether-bench-instructions.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            *("valgrind", "--tool=callgrind", "--instr-atstart=no"),
            f"--callgrind-out-file={out}",
            *command(server, loop, access_log, port),
        ],
        cwd=HERE,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        stdout=log if server == "uvicorn" else subprocess.DEVNULL,  # uvicorn logs to stdout
        stderr=log,
    )
    try:
        end = time.monotonic() + 300
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > end:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.5)
        drive(port, 200, heads)  # warm-up: first-request paths, imports, caches
        subprocess.run(
            ["callgrind_control", "-i", "on", str(proc.pid)], check=True, capture_output=True
        )
        drive(port, requests, heads)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:  # counted already; the floor may not stop on SIGINT
            proc.kill()
            proc.wait()
        log.close()
    (dump,) = glob.glob(f"{out}.*")
    with open(dump) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1]) / requests
    raise RuntimeError(f"no totals in {dump}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--core", choices=core.CHOICES, default="pure", help=core.HELP)
    parser.add_argument("--requests", type=int, default=1600)
    parser.add_argument(
        "--server", choices=("tether", "uvicorn", "tether-threaded", "floor"), default="tether"
    )
    parser.add_argument("--loop", choices=("asyncio", "uvloop", "trio"), default="asyncio")
    parser.add_argument("--access-log", action="store_true", help="log every request, as shipped")
    parser.add_argument("--mix", action="store_true", help="distinct realistic heads (traffic.py)")
    args = parser.parse_args()
    print(core.use(args.core), flush=True)
    requests = args.requests // CONNECTIONS * CONNECTIONS
    if args.access_log and args.server in ("tether-threaded", "floor"):
        parser.error("--access-log is for the ASGI servers (the WSGI rows run without one)")
    if args.loop != "asyncio" and (
        (args.loop == "trio" and args.server == "uvicorn")
        or (args.loop == "uvloop" and args.server == "floor")
    ):
        parser.error(f"{args.server} does not run on {args.loop} here")
    heads = None
    if args.mix:
        import traffic  # type: ignore[import-not-found]

        heads = traffic.get_heads(2000, seed=1)
    per_request = count(args.server, args.loop, args.access_log, requests, heads)
    log = "on" if args.access_log else "off"
    where = "threads" if args.server == "tether-threaded" else args.loop
    what = ", realistic mix" if args.mix else ""
    print(
        f"{args.server} ({where}, access log {log}{what}): {per_request:,.0f} instructions/request"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
