"""Soak: minutes of normal traffic mixed with hostile clients, against a real server process.

    python bench/soak.py                         # both servers, 120 s each
    python bench/soak.py --server threaded --seconds 600

The server runs with its default settings (as shipped; the access log off so the disk is not
what is measured) on 127.0.0.1. Normal clients send the realistic request mix of
bench/traffic.py on keep-alive connections and record failures and latency. Hostile clients run
beside them the whole time, each kind in its own thread, each bounded in count:

- slowloris: heads trickled a byte at a time;
- slow bodies: uploads trickled a byte at a time;
- non-readers: ask for a large streamed response and never read it;
- ping flood: a WebSocket that sends pings and never reads;
- idle WebSockets and idle keep-alive connections;
- connect-and-close, resets, garbage and half TLS handshakes.

Every ``--every`` seconds the server's RSS, open descriptors and threads are sampled (from
/proc), with the normal clients' counts; a table at the end shows the samples, and the verdict
line says whether any normal request failed and whether memory and descriptors stayed flat
(the last third of the run against the first). Not part of CI: it takes minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench import _harness as harness
    from bench import traffic
else:  # run as a script: bench/ is on sys.path
    import _harness as harness
    import traffic

HERE = Path(__file__).resolve().parent

ASGI_APP = """
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
        return
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(800):
            await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
"""

WSGI_APP = """
from tether_threaded import WebSocketClosed

def app(environ, start_response):
    upgrade = environ.get("tether.websocket")
    if upgrade is not None:
        ws = upgrade.accept()
        try:
            while True:
                ws.receive()
        except WebSocketClosed:
            return []
    if environ["PATH_INFO"] == "/stream":
        start_response("200 OK", [])
        return (b"x" * 65536 for _ in range(800))
    environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
"""


def _proc_sample(pid: int) -> tuple[float, int, int]:
    """(RSS in MB, open descriptors, threads) of ``pid`` and its children."""
    rss_kb, fds, threads = 0, 0, 0
    pids = [pid]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss_kb += int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads += int(line.split()[1])
            fds += len(os.listdir(f"/proc/{p}/fd"))
    return rss_kb / 1024, fds, threads


class Stats:
    """What the normal clients saw, shared by their threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ok = 0
        self.failed = 0
        self.latencies: list[float] = []

    def record(self, ok: bool, seconds: float) -> None:
        with self.lock:
            if ok:
                self.ok += 1
                self.latencies.append(seconds)
            else:
                self.failed += 1

    def take(self) -> tuple[int, int, float]:
        with self.lock:
            lat = sorted(self.latencies)
            p99 = lat[int(len(lat) * 0.99)] if lat else 0.0
            out = (self.ok, self.failed, p99)
            self.ok, self.failed, self.latencies = 0, 0, []
            return out


def _read_response(sock: socket.socket) -> bool:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return False
        body += chunk
    return head.startswith(b"HTTP/1.1 200")


def normal_client(port: int, stop: threading.Event, stats: Stats, seed: int) -> None:
    requests = traffic.requests(2000, seed=seed)
    sock: socket.socket | None = None
    i = 0
    while not stop.is_set():
        request = requests[i % len(requests)]
        i += 1
        started = time.monotonic()
        ok = False
        try:
            if sock is None:
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(request)
            ok = _read_response(sock)
        except OSError:
            ok = False
        if not ok and sock is not None:
            # A keep-alive connection the server closed while idle is retried once, as clients
            # do for idempotent requests; a failure on a fresh connection counts.
            sock.close()
            sock = None
            if request.startswith(b"GET"):
                try:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                    sock.sendall(request)
                    ok = _read_response(sock)
                except OSError:
                    ok = False
        stats.record(ok, time.monotonic() - started)


def _ws_upgrade(sock: socket.socket) -> None:
    sock.sendall(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )


def hostile(kind: str, port: int, stop: threading.Event, count: int) -> None:
    """Keep ``count`` hostile clients of ``kind`` busy until ``stop``; reconnect when cut."""
    rng = random.Random(kind)
    socks: list[socket.socket | None] = [None] * count
    ping = bytes([0x89, 0x80 | 125]) + b"mask" + b"p" * 125
    while not stop.is_set():
        for n in range(count):
            sock = socks[n]
            try:
                if kind == "churn":  # connect-and-close, resets, garbage, half TLS
                    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                        choice = rng.randrange(4)
                        if choice == 1:
                            s.setsockopt(
                                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                            )
                        elif choice == 2:
                            s.sendall(os.urandom(rng.randrange(1, 300)))
                        elif choice == 3:
                            s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
                    continue
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                    sock.setblocking(False)
                    socks[n] = sock
                    if kind in ("slow-body",):
                        sock.sendall(
                            b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
                        )
                    elif kind == "non-reader":
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
                    elif kind in ("ping-flood", "idle-ws"):
                        sock.sendall(b"")
                        sock.setblocking(True)
                        _ws_upgrade(sock)
                        sock.setblocking(False)
                    elif kind == "idle":
                        sock.setblocking(True)
                        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                        sock.setblocking(False)
                if kind == "slowloris":
                    sock.send(
                        b"GET / HTTP/1.1\r\nHost: x\r\nX-a: b\r\n"[
                            rng.randrange(10) : rng.randrange(10) + 1
                        ]
                    )
                elif kind == "slow-body":
                    sock.send(b"x")
                elif kind == "ping-flood":
                    with contextlib.suppress(BlockingIOError):
                        for _ in range(200):
                            sock.send(ping)
                else:  # non-reader, idle, idle-ws: hold it
                    with contextlib.suppress(BlockingIOError):
                        if sock.recv(1, socket.MSG_PEEK) == b"" and kind != "non-reader":
                            raise ConnectionResetError
            except OSError:
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()
                socks[n] = None
        stop.wait(0.05 if kind in ("ping-flood", "churn") else 1.0)
    for sock in socks:
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


HOSTILE = {
    "slowloris": 50,
    "slow-body": 20,
    "non-reader": 10,
    "ping-flood": 2,
    "idle-ws": 20,
    "idle": 200,
    "churn": 5,
}


def soak(server: str, seconds: float, every: float, clients: int) -> list[str]:
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"tether-soak-{server}"
    workdir.mkdir(exist_ok=True)
    port = harness.free_port()
    if server == "asyncio":
        (workdir / "soakapp.py").write_text(ASGI_APP)
        command = [sys.executable, "-m", "tether_asyncio", "serve", "soakapp:app"]
    else:
        (workdir / "soakapp.py").write_text(WSGI_APP)
        command = [sys.executable, "-m", "tether_threaded", "soakapp:app"]
    command += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(workdir), *sys.path]))
    with open(workdir / "server.log", "wb") as log:
        proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=log)
    stop = threading.Event()
    stats = Stats()
    threads = [
        threading.Thread(target=normal_client, args=(port, stop, stats, i), daemon=True)
        for i in range(clients)
    ]
    threads += [
        threading.Thread(target=hostile, args=(kind, port, stop, n), daemon=True)
        for kind, n in HOSTILE.items()
    ]
    rows = [f"# {server}: {seconds:.0f} s, {clients} normal clients, hostile: {HOSTILE}"]
    rows.append(
        f"{'t (s)':>6} {'RSS MB':>8} {'fds':>6} {'threads':>7} {'ok':>7} {'failed':>6} {'p99 ms':>7}"
    )
    samples: list[tuple[float, int]] = []
    failed_total = 0
    try:
        harness.wait_listening(port, proc, connect_timeout=0.5)
        for thread in threads:
            thread.start()
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < seconds:
            stop.wait(every)
            rss, fds, nthreads = _proc_sample(proc.pid)
            ok, failed, p99 = stats.take()
            failed_total += failed
            samples.append((rss, fds))
            rows.append(
                f"{elapsed:6.0f} {rss:8.1f} {fds:6d} {nthreads:7d} {ok:7d} {failed:6d} {p99 * 1000:7.1f}"
            )
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)
        proc.send_signal(2)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    third = max(1, len(samples) // 3)
    first = statistics.median(s[0] for s in samples[:third])
    last = statistics.median(s[0] for s in samples[-third:])
    fd_first = statistics.median(s[1] for s in samples[:third])
    fd_last = statistics.median(s[1] for s in samples[-third:])
    rows.append(
        f"verdict: {failed_total} normal requests failed; RSS median {first:.1f} -> {last:.1f} MB "
        f"(first third -> last third); descriptors {fd_first:.0f} -> {fd_last:.0f}; "
        f"server exit status {proc.returncode}"
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=("asyncio", "threaded", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--clients", type=int, default=8, help="normal keep-alive clients")
    args = parser.parse_args()
    servers = ("asyncio", "threaded") if args.server == "both" else (args.server,)
    for server in servers:
        for row in soak(server, args.seconds, args.every, args.clients):
            print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
