"""Memory per idle keep-alive connection: Tether's servers against uvicorn (httptools).

    python bench/idle_memory.py                    # 5000 connections per server
    python bench/idle_memory.py --connections 2000 --only tether-asyncio,uvicorn-httptools

Each server runs in its own process with a trivial app and a long keep-alive timeout. The bench
opens N connections, sends one request on each and reads its response, so every connection is
idle between requests, as a keep-alive client leaves it; the server's resident memory (VmRSS
from /proc) is read before and after. One line per server with the KB each connection costs,
then ``ratio=`` lines: a Tether server's KB per connection over uvicorn's (at most 1 is the bar).
Every asyncio server runs on the plain asyncio loop so the comparison is of the servers.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _harness import free_port, wait_listening  # type: ignore[import-not-found]  # noqa: E402

APP = """
async def app(scope, receive, send):
    if scope["type"] == "lifespan":  # lifespan on, as real apps run
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2"), (b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def wsgi(environ, start_response):
    start_response("200 OK", [("Content-Length", "2"), ("Content-Type", "text/plain")])
    return [b"ok"]
"""

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"


def commands(port: int, app_dir: str) -> dict[str, list[str]]:
    """The servers compared, each told to keep idle connections for five minutes."""
    py = sys.executable
    quiet = ["--no-access-log", "--log-level", "warning"]
    return {
        "tether-asyncio": [
            *(py, "-m", "tether_asyncio", "serve", "idle_app:app", "--app-dir", app_dir),
            *("--port", str(port), "--loop", "asyncio"),
            *("--timeout-keep-alive", "300", *quiet),
        ],
        "uvicorn-httptools": [
            *(py, "-m", "uvicorn", "idle_app:app", "--app-dir", app_dir, "--port", str(port)),
            *("--http", "httptools", "--loop", "asyncio", "--ws", "none"),
            *("--timeout-keep-alive", "300", *quiet),
        ],
        "tether-threaded": [
            *(py, "-m", "tether_threaded", "idle_app:wsgi", "--app-dir", app_dir),
            *("--port", str(port), "--timeout-keep-alive", "300", *quiet),
        ],
    }


def rss_kb(pid: int) -> int:
    """VmRSS of ``pid``, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def settled_rss(pid: int) -> int:
    """RSS once it stops changing (the server finished its work), read a few times."""
    last = rss_kb(pid)
    for _ in range(20):
        time.sleep(0.25)
        now = rss_kb(pid)
        if now == last:
            break
        last = now
    return last


def open_idle(port: int, count: int, batch: int = 20) -> list[socket.socket]:
    """``count`` connections that each completed one keep-alive request."""
    socks: list[socket.socket] = []
    selector = selectors.DefaultSelector()
    while len(socks) < count:
        pending: dict[socket.socket, bytes] = {}
        for _ in range(min(batch, count - len(socks))):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(REQUEST)
            sock.setblocking(False)
            pending[sock] = b""
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + 30
        while pending:
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not answer every request")
            for key, _ in selector.select(1):
                sock = key.fileobj  # type: ignore[assignment]
                assert isinstance(sock, socket.socket)
                data = pending[sock] + sock.recv(4096)
                if not data or data.endswith(b"\r\n\r\nok"):
                    if not data.startswith(b"HTTP/1.1 200"):
                        raise RuntimeError(f"bad response: {data[:100]!r}")
                    selector.unregister(sock)
                    del pending[sock]
                    socks.append(sock)
                else:
                    pending[sock] = data
    selector.close()
    return socks


def measure(name: str, command: list[str], port: int, count: int) -> float:
    """KB of server memory per idle connection."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    socks: list[socket.socket] = []
    try:
        wait_listening(port, proc)
        # Warm up: the first requests import and allocate what every later one reuses.
        for sock in open_idle(port, 50):
            sock.close()
        before = settled_rss(proc.pid)
        socks = open_idle(port, count)
        after = settled_rss(proc.pid)
    finally:
        for sock in socks:
            sock.close()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    per = (after - before) * 1024 / count / 1000
    print(
        f"{name}: connections={count} rss_before_kb={before} rss_after_kb={after} "
        f"kb_per_connection={per:.2f}",
        flush=True,
    )
    return per


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--only", default="", help="comma-separated server names")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.connections * 2 + 200  # ours and, in the children that inherit it, theirs
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
        if hard < want:
            print(f"RLIMIT_NOFILE hard limit {hard} < {want}: fewer connections", file=sys.stderr)
            args.connections = (hard - 200) // 2
    gc.disable()  # the bench's own collections need not interleave with the reading
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "idle_app.py").write_text(APP)
        env_path = os.pathsep.join([tmp, *sys.path])
        os.environ["PYTHONPATH"] = env_path + os.pathsep + os.environ.get("PYTHONPATH", "")
        wanted = {n for n in args.only.split(",") if n}
        for name in commands(0, tmp):
            if wanted and name not in wanted:
                continue
            port = free_port()
            try:
                results[name] = measure(name, commands(port, tmp)[name], port, args.connections)
            except (RuntimeError, OSError) as exc:
                print(f"{name}: failed: {exc}", flush=True)
    base = results.get("uvicorn-httptools")
    if base:
        for name, per in results.items():
            if name.startswith("tether"):
                print(f"{name} / uvicorn-httptools: ratio={per / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
