"""WebSocket server benchmark: an echo app under a raw-socket load, Tether against its peers.

    python bench/ws_server.py                       # every server, compression off and on
    python bench/ws_server.py --seconds 3 --rounds 3 --only tether

Servers: tether serve (asyncio, trio), tether-threaded, uvicorn (websockets and wsproto),
hypercorn, granian. Each runs an echo app the way users run it (lifespan on, the app answers
it), pinned to one core; the load runs in this process on the other core. The load is
``--connections`` (20) WebSocket connections, each sending bursts of ``--burst`` (50) masked
16-byte text frames and waiting for every echo before the next burst: messages per second
over ``--seconds``. With compression on, the client offers permessage-deflate and sends
uncompressed frames (a message may be sent uncompressed on a deflate connection); the server's
echoes come back compressed and are counted, not inflated.

Each line ends in ``ratio=<number>``: messages/second over uvicorn (websockets)'s in the same
mode; the figure is the median of ``--rounds`` interleaved rounds. ``cpu_us/msg`` is the server
process's CPU time (user + system, from ``/proc``; Linux only) per echoed message over the
measured seconds: on a machine shared with other work it moves less than messages/second does.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import selectors
import socket
import statistics
import subprocess
import sys
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
MASK = b"\x11\x22\x33\x44"
PAYLOAD = b"0123456789abcdef"


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    """ASGI echo app with lifespan, as a real app has."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


def _wsgi_app():  # type: ignore[no-untyped-def]
    from tether_threaded import websocket_app

    def echo(ws):  # type: ignore[no-untyped-def]
        while True:
            ws.send(ws.receive())

    return websocket_app(echo)


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # "ws_server:wsgi_app" for tether-threaded, built lazily so the ASGI servers never import it.
    if name == "wsgi_app":
        return _wsgi_app()
    raise AttributeError(name)


def _frame(payload: bytes) -> bytes:
    masked = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + MASK + masked


def _handshake(sock: socket.socket, port: int, deflate: bool) -> bytes:
    key = base64.b64encode(os.urandom(16))
    extra = b"Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else b""
    sock.sendall(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n" % (port, key, extra)
    )
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError("closed during the handshake")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"handshake refused: {head[:60]!r}")
    return rest


def _count_frames(buf: bytearray) -> int:
    """Drop whole server frames from the front of ``buf``; return how many."""
    count = 0
    pos = 0
    size = len(buf)
    while size - pos >= 2:
        length = buf[pos + 1] & 0x7F
        header = 2
        if length == 126:
            if size - pos < 4:
                break
            length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
            header = 4
        elif length == 127:
            if size - pos < 10:
                break
            length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
            header = 10
        if size - pos < header + length:
            break
        pos += header + length
        count += 1
    del buf[:pos]
    return count


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (None: not on Linux, or no pid)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(
    port: int,
    connections: int,
    burst: int,
    seconds: float,
    deflate: bool,
    pid: int | None = None,
) -> tuple[float, float | None]:
    """Messages echoed per second over ``seconds`` (after a short warm-up), and the CPU
    seconds process ``pid`` (the server) spent per message meanwhile (None: unknown)."""
    payload = _frame(PAYLOAD) * burst
    selector = selectors.DefaultSelector()
    socks = []
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rest = _handshake(sock, port, deflate)
        sock.setblocking(False)
        state = {"buf": bytearray(rest), "waiting": 0}
        selector.register(sock, selectors.EVENT_READ, state)
        socks.append((sock, state))
    echoed = 0
    start = time.perf_counter()
    warm_until = start + min(1.0, seconds / 4)
    measured_from = None
    cpu_from = None
    end = warm_until + seconds
    try:
        for sock, state in socks:
            sock.sendall(payload)
            state["waiting"] = burst
        while True:
            now = time.perf_counter()
            if measured_from is None and now >= warm_until:
                measured_from, echoed = now, 0
                cpu_from = _cpu_seconds(pid)
            if now >= end:
                break
            for key, _ in selector.select(timeout=1.0):
                sock, state = key.fileobj, key.data
                try:
                    data = sock.recv(262144)  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                if not data:
                    raise RuntimeError("the server closed a connection")
                state["buf"] += data
                got = _count_frames(state["buf"])
                echoed += got
                state["waiting"] -= got
                if state["waiting"] <= 0:
                    state["waiting"] += burst
                    sock.sendall(payload)  # type: ignore[union-attr]
        elapsed = time.perf_counter() - (measured_from or start)
        cpu_to = _cpu_seconds(pid)
        cpu = None
        if cpu_from is not None and cpu_to is not None and echoed:
            cpu = (cpu_to - cpu_from) / echoed
        return echoed / elapsed, cpu
    finally:
        for sock, _ in socks:
            with contextlib.suppress(OSError):
                sock.close()
        selector.close()


def _commands(port: int, deflate: bool) -> dict[str, list[str]]:
    py = sys.executable
    p = str(port)
    where = ["--app-dir", str(HERE)]
    tether = [py, "-m", "tether_asyncio", "serve", "ws_server:app", "--port", p, *where]
    tether += ["--no-access-log", "--log-level", "warning"]
    tether += [] if deflate else ["--no-ws-per-message-deflate"]
    # tether-threaded accepts permessage-deflate when the client offers it (no switch).
    threaded = [py, "-m", "tether_threaded._cli", "ws_server:wsgi_app", "--port", p]
    threaded += ["--no-access-log", "--log-level", "warning"]
    uvicorn = [py, "-m", "uvicorn", "ws_server:app", "--port", p, *where, "--no-access-log"]
    uvicorn += ["--log-level", "warning", "--loop", "asyncio", "--http", "httptools"]
    uvicorn += [] if deflate else ["--ws-per-message-deflate", "false"]
    hypercorn = [py, "-m", "hypercorn", "ws_server:app", "--bind", f"127.0.0.1:{p}"]
    hypercorn += ["--worker-class", "asyncio", "--log-level", "warning"]
    granian = [py, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", p]
    granian += ["--workers", "1", "--runtime-threads", "1", "--loop", "asyncio"]
    granian += ["--log-level", "warning", "ws_server:app"]
    # hypercorn and granian accept permessage-deflate when the client offers it.
    return {
        "tether serve (asyncio)": [*tether, "--loop", "asyncio"],
        "tether serve (trio)": [*tether, "--backend", "trio"],
        "tether-threaded": threaded,
        "uvicorn (websockets)": [*uvicorn, "--ws", "websockets"],
        "uvicorn (wsproto)": [*uvicorn, "--ws", "wsproto"],
        "hypercorn": hypercorn,
        "granian": granian,
    }


def measure(
    command: list[str], port: int, args: argparse.Namespace, deflate: bool
) -> tuple[float, float | None]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / "tether-bench-ws.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [*harness.pin(0), *command], cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=log
    )
    try:
        harness.wait_listening(port, proc, connect_timeout=0.5)
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setaffinity(0, {1})
        return load(port, args.connections, args.burst, args.seconds, deflate, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--core", choices=core.CHOICES, default="pure", help=core.HELP)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--only", default=None, help="only servers whose name contains this")
    parser.add_argument("--mode", choices=("off", "on", "both"), default="both")
    args = parser.parse_args()
    print(core.use(args.core), flush=True)
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.mode]
    base_name = "uvicorn (websockets)"
    for deflate in modes:
        names = [
            n
            for n in _commands(0, deflate)
            if args.only is None or args.only in n or n == base_name
        ]
        rates: dict[str, list[float]] = {}
        cpus: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for name in names:
                port = harness.free_port()
                try:
                    rate, cpu = measure(_commands(port, deflate)[name], port, args, deflate)
                except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
                    print(f"  {name}: failed: {exc}", file=sys.stderr)
                    continue
                rates.setdefault(name, []).append(rate)
                if cpu is not None:
                    cpus.setdefault(name, []).append(cpu * 1e6)
        med = {n: statistics.median(v) for n, v in rates.items()}
        base = med.get(base_name) or float("nan")
        mode = "compression on" if deflate else "compression off"
        print(
            f"# WebSocket echo, {args.connections} conns x bursts of {args.burst} 16-byte texts, "
            f"lifespan on, {mode}, ratio vs {base_name}",
            flush=True,
        )
        for name, rate in med.items():
            cpu_text = f" cpu_us/msg={statistics.median(cpus[name]):5.1f}" if name in cpus else ""
            print(f"{name:<26} msg/s={rate:>9.0f}{cpu_text} ratio={rate / base:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
