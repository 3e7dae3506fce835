"""Server benchmark: a hello-world app under wrk, Tether against its peers, in one run.

    python bench/server.py                 # ASGI group, then the WSGI group if present
    python bench/server.py --only asgi --duration 5 --repeat 3

ASGI group: tether (asyncio), tether (trio), uvicorn (h11), uvicorn (httptools), hypercorn,
granian (a Rust server, the upper anchor), and a no-HTTP anyio server answering every read with a
fixed response: the floor anyio itself allows (on asyncio and on trio). Every server runs the
way users run it: lifespan on (the app answers it, as every Starlette or FastAPI app does), on
the plain asyncio loop (trio for tether-trio) so the comparison is of the servers, not the
loops. The rows compare with the access log off; "access log" rows keep it on as shipped, the
"metrics" row serves --metrics-port (nobody scrapes it: the cost is the request path's; its
on/off ratio is printed for requests/s and for server CPU per request, and
``bench/metrics_cost.py`` counts the instructions instead), and
"realistic mix" rows send 2,000 distinct request heads in turn (bench/traffic.py: per-session
cookies, request ids, traceparent, forwarded-for, varied paths) instead of one repeated GET.
wrk uses 50 keep-alive connections; the server is pinned to one core and wrk to the other where
the machine has two. One line per server: req/s, server CPU per request, and ``ratio=<number>``:
requests/second over the anyio floor's (trio rows: over the trio floor), the median of
``--repeat`` interleaved rounds. A last block prints the ratios the project's bars name.

wrk comes from the system's packages (``apt-get install wrk`` / ``brew install wrk``).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench import _core as core
    from bench import _harness as harness
else:  # run as a script or imported by a server: bench/ is on sys.path
    import _core as core
    import _harness as harness

HERE = Path(__file__).resolve().parent
BODY = b"Hello, world!"
FIXED_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 13\r\n"
    b"date: Sun, 22 Nov 2026 00:00:00 GMT\r\nserver: floor\r\n\r\n" + BODY
)


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    """The hello-world ASGI app every server runs; it supports lifespan, as real apps do."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope.setdefault("state", {})["ready"] = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
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


def serve_floor(port: int, backend: str = "asyncio") -> None:
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

    anyio.run(main, backend=backend)


#: Rows whose wrk run cycles through distinct request heads (bench/traffic.py).
MIX = ", realistic mix"
#: The --metrics-port row, and the row it is compared with (same options, metrics off).
METRICS, OFF = "tether (asyncio), metrics", "tether (asyncio)"


def _commands(port: int) -> dict[str, list[str]]:
    py = sys.executable
    where = ["--app-dir", str(HERE)]
    tether = [py, "-m", "tether_asyncio", "serve", "server:app", "--port", str(port), *where]
    tether += ["--log-level", "warning"]
    uvicorn = [py, "-m", "uvicorn", "server:app", "--port", str(port), *where]
    uvicorn += ["--log-level", "warning", "--loop", "asyncio", "--ws", "none"]
    granian = [py, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1"]
    granian += [
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "asyncio",
        "--log-level",
        "warning",
    ]
    granian += ["--runtime-threads", "1", "--no-ws", "server:app"]
    floor = [py, str(HERE / "server.py"), "--serve-floor", str(port)]
    # "--log-level warning" also silences both servers' access logs (INFO lines): the "access
    # log" rows set the level both ship with, so that their lines are written.
    shipped = ["--log-level", "info"]
    return {
        "anyio floor (asyncio)": floor,
        "anyio floor (trio)": [*floor, "--floor-backend", "trio"],
        "tether (asyncio)": [*tether, "--no-access-log", "--loop", "asyncio"],
        "tether (trio)": [*tether, "--no-access-log", "--backend", "trio"],
        "tether (asyncio), access log": [*tether, *shipped, "--loop", "asyncio"],
        "tether (asyncio), metrics": [
            *[*tether, "--no-access-log", "--loop", "asyncio"],
            *("--metrics-port", str(harness.free_port())),
        ],
        "tether (asyncio)" + MIX: [*tether, "--no-access-log", "--loop", "asyncio"],
        "uvicorn (h11)": [*uvicorn, "--no-access-log", "--http", "h11"],
        "uvicorn (httptools)": [*uvicorn, "--no-access-log", "--http", "httptools"],
        "uvicorn (httptools), access log": [*uvicorn, *shipped, "--http", "httptools"],
        "uvicorn (httptools)" + MIX: [*uvicorn, "--no-access-log", "--http", "httptools"],
        "granian": granian,
        "granian" + MIX: granian,
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


def _mix_script() -> str:
    """A wrk script cycling through 2,000 distinct GET heads (written once per run)."""
    if TYPE_CHECKING:
        from bench import traffic
    else:
        import traffic
    path = Path(tempfile.gettempdir()) / "tether-bench-mix.lua"
    path.write_text(traffic.wrk_lua(traffic.get_heads(2000, seed=1)))
    return str(path)


def _measure(
    command: list[str], port: int, duration: float, script: str | None = None
) -> tuple[float, float]:
    """(requests/second, server CPU microseconds per request) for one server."""
    # The access log goes to a file, as a server's stderr does in production (a pipe nobody
    # reads would block the server once full).
    with open(Path(tempfile.gettempdir()) / "tether-bench-server.log", "wb") as log:
        run = harness.measure(
            command, port, duration, app_dir=HERE, server_stderr=log.fileno(), script=script
        )
    if run.requests_per_second <= 0:
        raise RuntimeError("no request completed")
    return run.requests_per_second, run.cpu_seconds * 1e6 / (run.requests_per_second * run.seconds)


def run_asgi_group(duration: float, repeat: int, only: str | None = None) -> list[str]:
    """Benchmark every ASGI server; return one line per server (median over ``repeat``)."""
    results: dict[str, list[float]] = {}
    costs: dict[str, list[float]] = {}
    script = _mix_script()
    names = [n for n in _commands(0) if only is None or only in n or n.startswith("anyio")]
    if METRICS in names and OFF not in names:
        names.append(OFF)  # the metrics row means nothing without the same server's off row
    for _ in range(repeat):
        for name in names:
            port = harness.free_port()
            try:
                rps, cost = _measure(
                    _commands(port)[name], port, duration, script if MIX in name else None
                )
            except (RuntimeError, subprocess.CalledProcessError) as exc:
                print(f"  {name}: failed: {exc}", file=sys.stderr)
                continue
            results.setdefault(name, []).append(rps)
            costs.setdefault(name, []).append(cost)
    med = {name: statistics.median(values) for name, values in results.items()}
    floor = med.get("anyio floor (asyncio)") or float("nan")
    trio_floor = med.get("anyio floor (trio)") or float("nan")
    lines = []
    for name, rps in med.items():
        cost = statistics.median(costs[name])
        base = trio_floor if "trio" in name else floor
        lines.append(f"{name:<36} req/s={rps:>9.0f} cpu/req={cost:>6.1f}us ratio={rps / base:.2f}")
    lines.append("# the bars' ratios (same run)")
    for label, top, bottom in (
        ("tether asyncio / uvicorn httptools", "tether (asyncio)", "uvicorn (httptools)"),
        ("tether asyncio / anyio floor", "tether (asyncio)", "anyio floor (asyncio)"),
        ("tether trio / anyio floor (trio)", "tether (trio)", "anyio floor (trio)"),
        (
            "tether / uvicorn httptools, access log",
            "tether (asyncio), access log",
            "uvicorn (httptools), access log",
        ),
        (
            "tether / uvicorn httptools, realistic mix",
            "tether (asyncio)" + MIX,
            "uvicorn (httptools)" + MIX,
        ),
        ("tether asyncio / granian", "tether (asyncio)", "granian"),
        ("tether asyncio, metrics on / off", "tether (asyncio), metrics", "tether (asyncio)"),
    ):
        if top in med and bottom in med:
            lines.append(f"{label:<44} ratio={med[top] / med[bottom]:.2f}")
    if METRICS in costs and OFF in costs:
        # CPU per request is what a busy shared machine disturbs least (requests/s moves by
        # more than the 5% bar from one run to the next there): on/off, medians.
        on, off = statistics.median(costs[METRICS]), statistics.median(costs[OFF])
        lines.append(f"{'tether asyncio, metrics on / off, CPU/request':<44} ratio={on / off:.2f}")
        lines.append(_metrics_duel(repeat))
    return lines


def _metrics_duel(rounds: int) -> str:
    """Issue 15's bar (metrics cost at most 5% of requests/s) as a duel: the two rows on one
    core at once, so that what moves the machine moves both (single runs here swing by more
    than the bar; see bench/duel.py). The median ratio of requests completed."""
    import duel  # type: ignore[import-not-found]  # bench/duel.py (imports these rows)

    ratios = []
    for n in range(max(rounds, 2)):
        pair = (METRICS, OFF) if n % 2 == 0 else (OFF, METRICS)
        a, b, _, _ = duel.duel_round(*pair, seconds=6)
        ratios.append(a / b if pair[0] == METRICS else b / a)
    label = "tether asyncio, metrics on / off, by duel"
    return f"{label:<44} ratio={statistics.median(ratios):.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--core", choices=core.CHOICES, default="pure", help=core.HELP)
    parser.add_argument("--only", choices=("asgi", "wsgi"), default=None)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument(
        "--rows", default=None, help="only the ASGI rows whose name contains this (and the floors)"
    )
    parser.add_argument("--serve-floor", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--floor-backend", default="asyncio", help=argparse.SUPPRESS)
    args = parser.parse_args()
    print(core.use(args.core), flush=True)
    if args.serve_floor is not None:
        with contextlib.suppress(KeyboardInterrupt):
            serve_floor(args.serve_floor, args.floor_backend)
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
        for line in run_asgi_group(args.duration, args.repeat, args.rows):
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
