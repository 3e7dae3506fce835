"""Helpers for adversarial tests: a server in a real subprocess, its memory, raw-socket clients.

The attacks these tests stage (non-reading clients, floods, half handshakes) are aimed at a
server started exactly as a user starts it, ``python -m tether_asyncio serve ...``, so that a
failure that kills the process or grows its memory is seen as it would be in production.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: The ASGI app the hostile tests attack. ``/`` answers "ok"; ``/stream`` streams 50 MB in
#: 64 KiB chunks (``/stream?forever`` never ends, ``?small`` sends 1 KiB chunks); ``/upload`` reads the body and tells its
#: size; a WebSocket on ``/flood`` receives nothing and sends 64 KiB messages without end, one
#: on ``/hold`` receives nothing and sends nothing, any other WebSocket echoes.
HOSTILE_APP = """
import anyio

CHUNK = b"x" * 65536

async def app(scope, receive, send):
    kind = scope["type"]
    if kind == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    path = scope["path"]
    if kind == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        if path == "/flood":
            text = "x" * 65536
            while True:
                await send({"type": "websocket.send", "text": text})
        if path == "/hold":
            await anyio.sleep_forever()  # takes no message
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message.get("text") or ""})
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        query = scope["query_string"]
        chunk = b"y" * 1024 if b"small" in query else CHUNK
        count = 0
        while b"forever" in query or count < 800:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            count += 1
        await send({"type": "http.response.body", "body": b""})
        return
    size = 0
    if path == "/upload":
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
    body = str(size).encode() if path == "/upload" else b"ok"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
"""


@dataclass
class ServerProcess:
    """A server running in a subprocess on 127.0.0.1."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_kb(self) -> int:
        """The process's resident memory (VmRSS), in KiB."""
        return rss_kb(self.pid)

    def connect(self, timeout: float = 5.0) -> socket.socket:
        """A raw TCP connection to the server."""
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        """What the server logged so far."""
        return self.log.read_text(errors="replace")


def rss_kb(pid: int) -> int:
    """VmRSS of process ``pid`` from /proc, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Return once ``port`` accepts connections; fail if ``proc`` exits or time runs out."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)  # polling a port for readiness: there is no event to wait on
    raise RuntimeError("the server did not start listening")


@contextlib.contextmanager
def start(
    command: list[str], workdir: Path, port: int, *, env: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    """Run ``command`` (which must listen on ``port``) in ``workdir``; stop it afterwards.

    Its output goes to a file (a pipe nobody reads would block a chatty server).
    """
    log = workdir / f"server-{port}.log"
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join([str(workdir), *sys.path]))
    environ.update(env or {})
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=workdir, env=environ, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_listening(port, proc)
        yield ServerProcess(proc, port, log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@contextlib.contextmanager
def tether_serve(workdir: Path, *options: str, app: str = HOSTILE_APP) -> Iterator[ServerProcess]:
    """``python -m tether_asyncio serve hostile:app --port P *options`` in ``workdir``."""
    (workdir / "hostile.py").write_text(app)
    port = free_port()
    command = [sys.executable, "-m", "tether_asyncio", "serve", "hostile:app"]
    command += ["--port", str(port), "--lifespan", "off", "--no-access-log", *options]
    with start(command, workdir, port) as server:
        yield server


#: The smallest WSGI app: "ok" on every path.
WSGI_OK_APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
"""


@contextlib.contextmanager
def tether_threaded(
    workdir: Path, *options: str, app: str = WSGI_OK_APP
) -> Iterator[ServerProcess]:
    """``python -m tether_threaded wsgiapp:app --port P *options`` in ``workdir``."""
    (workdir / "wsgiapp.py").write_text(app)
    port = free_port()
    command = [sys.executable, "-m", "tether_threaded", "wsgiapp:app"]
    command += ["--port", str(port), "--no-access-log", *options]
    with start(command, workdir, port) as server:
        yield server


@contextlib.contextmanager
def any_server(kind: str, workdir: Path, *options: str) -> Iterator[ServerProcess]:
    """``tether serve --backend KIND`` (asyncio or trio), or ``tether-threaded`` for
    ``"threaded"``, each with its module's app and ``options``."""
    if kind == "threaded":
        with tether_threaded(workdir, *options) as server:
            yield server
    else:
        with tether_serve(workdir, "--backend", kind, *options) as server:
            yield server


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key for 127.0.0.1 (needs the ``openssl`` command)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    if not cert.exists():
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
                *("-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
    return cert, key


def have(program: str) -> bool:
    """Whether ``program`` is on the PATH."""
    return shutil.which(program) is not None


def non_reading_socket(port: int) -> socket.socket:
    """A connection with a small receive buffer, so a server's output backs up soon."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    return sock


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Read (and discard) until the peer closes; True if that happens within ``seconds``."""
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if not sock.recv(1 << 20):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False


def get(port: int, path: str = "/", timeout: float = 5.0) -> tuple[int, bytes]:
    """One ``GET`` on a fresh connection (``Connection: close``): the status and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def websocket_upgrade(sock: socket.socket, path: str = "/") -> bytes:
    """Send a WebSocket upgrade for ``path`` and read the 101 head; return bytes read past it."""
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the WebSocket handshake")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return rest


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A client WebSocket frame (FIN set, a zero mask so the payload goes as is)."""
    assert len(payload) < 126
    return bytes((0x80 | opcode, 0x80 | len(payload))) + b"\0\0\0\0" + payload


def wait_for_ok(port: int, within: float) -> float:
    """Poll ``GET /`` on fresh connections until one answers 200; the seconds it took.

    AssertionError if none does within ``within`` seconds (the last status is reported).
    """
    start = time.monotonic()
    status: int | str | None = None
    while time.monotonic() - start < within:
        try:
            status, _ = get(port, timeout=within)
        except OSError as exc:
            status = repr(exc)
        if status == 200:
            return time.monotonic() - start
        time.sleep(0.1)  # between polls of a condition that has no event to wait on
    raise AssertionError(f"no 200 within {within} s (last: {status})")


class FastReader:
    """A thread that reads a response from ``sock`` as fast as it can, until told to stop."""

    def __init__(self, sock: socket.socket) -> None:
        import threading

        self.sock = sock
        self.received = 0
        self.started = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buffer = bytearray(1 << 20)
        self.sock.settimeout(1)
        while not self._stop.is_set():
            try:
                n = self.sock.recv_into(buffer)
            except TimeoutError:
                continue
            except OSError:
                return
            if not n:
                return
            self.received += n
            if self.received > 1 << 20:
                self.started.set()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def exchange(server: ServerProcess, request: bytes) -> bytes:
    """Send one request, half-close, and read the whole response (until the server closes)."""
    with server.connect() as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data
