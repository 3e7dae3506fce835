"""Server benchmark: a hello-world app under wrk, Tether against its peers, in one run.

    python bench/server.py                 # ASGI group, then the WSGI group if present
    python bench/server.py --only asgi --duration 5 --repeat 3

ASGI group: tether (asyncio), tether (trio), uvicorn (h11), uvicorn (httptools), hypercorn, and a
no-HTTP anyio server answering every read with a fixed response: the floor anyio itself allows.
Every server runs on the plain asyncio loop (trio for tether-trio) so the comparison is of the
servers, not the loops. wrk uses 50 keep-alive connections; the server is pinned to one core and
wrk to the other where the machine has two. One line per server, ending in ``ratio=<number>``:
requests/second over the anyio floor's, the median of ``--repeat`` interleaved rounds.

wrk comes from the system's packages (``apt-get install wrk`` / ``brew install wrk``).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench import _harness as harness
else:  # run as a script or imported by a server: bench/ is on sys.path
    import _harness as harness

HERE = Path(__file__).resolve().parent
BODY = b"Hello, world!"
FIXED_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 13\r\n"
    b"date: Sun, 22 Nov 2026 00:00:00 GMT\r\nserver: floor\r\n\r\n" + BODY
)


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    """The hello-world ASGI app every server runs."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


def serve_floor(port: int) -> None:
    """The anyio floor: read, answer with fixed bytes, repeat. No HTTP parsing at all."""
    import anyio
    from anyio.abc import SocketStream

    async def handle(stream: SocketStream) -> None:
        async with stream:
            while True:
                try:
                    await stream.receive(65536)
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
                await stream.send(FIXED_RESPONSE)

    async def main() -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)
        await listener.serve(handle)

    anyio.run(main)


def _commands(port: int) -> dict[str, list[str]]:
    py = sys.executable
    where = ["--app-dir", str(HERE)]
    tether = [py, "-m", "tether_asyncio", "serve", "server:app", "--port", str(port)]
    tether += [*where, "--no-access-log", "--log-level", "warning", "--lifespan", "off"]
    uvicorn = [py, "-m", "uvicorn", "server:app", "--port", str(port), *where]
    uvicorn += ["--no-access-log", "--log-level", "warning", "--loop", "asyncio"]
    uvicorn += ["--lifespan", "off", "--ws", "none"]
    return {
        "anyio floor (asyncio)": [py, str(HERE / "server.py"), "--serve-floor", str(port)],
        "tether (asyncio)": [*tether, "--loop", "asyncio"],
        "tether (trio)": [*tether, "--backend", "trio"],
        "uvicorn (h11)": [*uvicorn, "--http", "h11"],
        "uvicorn (httptools)": [*uvicorn, "--http", "httptools"],
        "hypercorn": [
            py,
            "-m",
            "hypercorn",
            "server:app",
            "--bind",
            f"127.0.0.1:{port}",
            "--root-path",
            "",
            *("--worker-class", "asyncio"),
            *("--log-level", "warning"),
        ],
    }


def _measure(command: list[str], port: int, duration: float) -> tuple[float, float]:
    """(requests/second, server CPU microseconds per request) for one server."""
    run = harness.measure(command, port, duration, app_dir=HERE, server_stderr=subprocess.PIPE)
    if run.requests_per_second <= 0:
        raise RuntimeError("no request completed")
    return run.requests_per_second, run.cpu_seconds * 1e6 / (run.requests_per_second * run.seconds)


def run_asgi_group(duration: float, repeat: int) -> list[str]:
    """Benchmark every ASGI server; return one line per server (median over ``repeat``)."""
    results: dict[str, list[float]] = {}
    costs: dict[str, list[float]] = {}
    for _ in range(repeat):
        for name in _commands(0):
            port = harness.free_port()
            try:
                rps, cost = _measure(_commands(port)[name], port, duration)
            except (RuntimeError, subprocess.CalledProcessError) as exc:
                print(f"  {name}: failed: {exc}", file=sys.stderr)
                continue
            results.setdefault(name, []).append(rps)
            costs.setdefault(name, []).append(cost)
    floor = statistics.median(results.get("anyio floor (asyncio)", [0.0])) or float("nan")
    lines = []
    for name, values in results.items():
        rps = statistics.median(values)
        cost = statistics.median(costs[name])
        lines.append(f"{name:<24} req/s={rps:>9.0f} cpu/req={cost:>6.1f}us ratio={rps / floor:.2f}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("asgi", "wsgi"), default=None)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument("--serve-floor", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor is not None:
        with contextlib.suppress(KeyboardInterrupt):
            serve_floor(args.serve_floor)
        return 0
    if shutil.which("wrk") is None:
        print(
            "wrk is not installed: install it from your system's packages "
            "(Debian/Ubuntu: sudo apt-get install wrk; macOS: brew install wrk)",
            file=sys.stderr,
        )
        return 2
    if args.only in (None, "asgi"):
        print(
            f"# ASGI: hello world, wrk -c50, {args.duration}s x {args.repeat}, ratio vs anyio floor"
        )
        for line in run_asgi_group(args.duration, args.repeat):
            print(line, flush=True)
    if args.only in (None, "wsgi"):
        if (HERE / "_wsgi_servers.py").exists():
            sys.path.insert(0, str(HERE))
            from _wsgi_servers import run_wsgi_group  # type: ignore[import-not-found]

            print("# WSGI")
            for line in run_wsgi_group(args.duration):
                print(line, flush=True)
        elif args.only == "wsgi":
            print("bench/_wsgi_servers.py is not there yet", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
