"""examples/asyncio_server.py under wrk, against the same server on h11 and uvicorn + httptools.

    python bench/asyncio_example.py                       # 3 s per row, 1 round, plain asyncio
    python bench/asyncio_example.py --duration 5 --repeat 3 --loop uvloop

Three servers answer ``Hello, world!`` (13 bytes, Content-Length, Date) to a keep-alive GET:

- **tether example**: ``examples/asyncio_server.py`` as it is (its deadlines on
  ``loop.call_at``, its flow control, its 100-continue and WebSocket handling);
- **h11 example**: the same ``asyncio.Protocol`` shape with h11 0.16 in place of the Tether core
  (defined below; no deadlines, since h11 has none, so it does less per request);
- **uvicorn (httptools)**: uvicorn with its C parser and the ASGI hello-world app of
  ``bench/server.py``, access log off, lifespan on, as users run it;
- **floor (no HTTP)**: an ``asyncio.Protocol`` answering every read with a fixed response: what
  the loop and the system calls cost, which no HTTP implementation can go below.

All on the same event loop (``--loop``), in the same run, wrk with 50 connections, each server
pinned to one core and wrk to the other where the machine has two (``bench/_harness.py``). One
line per server (median req/s over ``--repeat`` rounds, server CPU per request), then the ratios
the project's bars name: tether / h11 (bar 3x) and tether / uvicorn+httptools (bar 1.5x), by
requests per second and, steadier on a shared machine, by server CPU time per request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from bench import _harness as harness
else:  # run as a script: bench/ is on sys.path
    import _harness as harness

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BODY = b"Hello, world!"


def load_example() -> Any:
    """``examples/asyncio_server.py`` as a module."""
    spec = importlib.util.spec_from_file_location(
        "asyncio_server", ROOT / "examples" / "asyncio_server.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["asyncio_server"] = module
    spec.loader.exec_module(module)
    return module


class H11Protocol(asyncio.Protocol):
    """The example's HTTP path written on h11: keep-alive, pipelining, batched writes."""

    def __init__(self) -> None:
        import h11

        from tether.http1 import date_header  # the same cached Date value for both servers

        self.h11 = h11
        self.date_header = date_header
        self.conn = h11.Connection(h11.SERVER)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's: not a subclass

    def data_received(self, data: bytes) -> None:
        h11 = self.h11
        conn = self.conn
        transport = self.transport
        assert transport is not None
        conn.receive_data(data)
        out: list[bytes] = []
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                transport.write(b"".join(out))
                transport.close()
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                break
            if isinstance(event, h11.EndOfMessage):
                headers = [
                    (b"content-type", b"text/plain"),
                    (b"content-length", b"%d" % len(BODY)),
                    self.date_header(time.time()),
                ]
                out.append(conn.send(h11.Response(status_code=200, headers=headers)) or b"")
                out.append(conn.send(h11.Data(data=BODY)) or b"")
                out.append(conn.send(h11.EndOfMessage()) or b"")
                if conn.our_state is h11.MUST_CLOSE:
                    transport.write(b"".join(out))
                    transport.close()
                    return
                conn.start_next_cycle()
            elif isinstance(event, h11.ConnectionClosed):
                transport.close()
                return
        if out:
            transport.write(b"".join(out))

    def eof_received(self) -> bool:
        self.data_received(b"")
        return True


FIXED_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 13\r\n"
    b"date: Sun, 22 Nov 2026 00:00:00 GMT\r\n\r\n" + BODY
)


class FloorProtocol(asyncio.Protocol):
    """No HTTP at all: every read is answered with one fixed response (what the loop costs)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.transport.write(FIXED_RESPONSE)


def serve(kind: str, port: int, loop: str) -> None:
    """Run one of the two example servers on 127.0.0.1:port until SIGINT."""
    if loop == "uvloop":
        import uvloop

        uvloop.install()

    async def main() -> None:
        if kind == "tether":
            server = await load_example().start("127.0.0.1", port)
        else:
            factory = H11Protocol if kind == "h11" else FloorProtocol
            server = await asyncio.get_running_loop().create_server(
                factory, "127.0.0.1", port, backlog=1024
            )
        async with server:
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


def commands(port: int, loop: str) -> dict[str, list[str]]:
    me = [sys.executable, str(Path(__file__).resolve()), "--loop", loop, "--port", str(port)]
    uvicorn = [sys.executable, "-m", "uvicorn", "server:app", "--port", str(port)]
    uvicorn += ["--log-level", "warning", "--loop", loop, "--ws", "none", "--no-access-log"]
    return {
        "tether example": [*me, "--serve", "tether"],
        "h11 example": [*me, "--serve", "h11"],
        "uvicorn (httptools)": [*uvicorn, "--http", "httptools"],
        "floor (no HTTP)": [*me, "--serve", "floor"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the median is reported")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--serve", choices=("tether", "h11", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.loop)
        return 0
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian/Ubuntu: sudo apt-get install wrk)", file=sys.stderr)
        return 2
    rates: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    print(f"# hello world, wrk -c50, {args.duration}s x {args.repeat}, loop={args.loop}")
    for _ in range(args.repeat):
        for name, command in commands(harness.free_port(), args.loop).items():
            port = int(command[command.index("--port") + 1])
            with open(Path(tempfile.gettempdir()) / "tether-bench-example.log", "wb") as log:
                run = harness.measure(
                    command, port, args.duration, app_dir=HERE, server_stderr=log.fileno()
                )
            if run.requests_per_second <= 0:
                raise RuntimeError(f"{name}: no request completed")
            rates.setdefault(name, []).append(run.requests_per_second)
            per_request = run.cpu_seconds * 1e6 / (run.requests_per_second * run.seconds)
            cpus.setdefault(name, []).append(per_request)
    med = {name: statistics.median(values) for name, values in rates.items()}
    for name, rate in med.items():
        cpu = statistics.median(cpus[name])
        ratio = rate / med["tether example"]
        print(f"{name:<22} {rate:>10,.0f} req/s  {cpu:6.1f} us CPU/req  ratio={ratio:.2f}")
    for label, bottom, bar in (
        ("tether example / h11 example", "h11 example", 3.0),
        ("tether example / uvicorn (httptools)", "uvicorn (httptools)", 1.5),
    ):
        cpu_ratio = statistics.median(cpus[bottom]) / statistics.median(cpus["tether example"])
        print(f"{label:<40} (bar {bar}x) ratio={med['tether example'] / med[bottom]:.2f}")
        print(f"{label + ', by CPU per request':<58} ratio={cpu_ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
