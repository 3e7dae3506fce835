"""Fixtures for the anyio server tests: a real server on 127.0.0.1, on asyncio and on trio.

``serve(app, **config)`` starts :class:`tether_asyncio.Server` in a thread (its own event loop,
an ephemeral port) and stops it gracefully when the test ends. Every test that takes ``serve``
runs once per backend.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tether_asyncio import Config, Server  # noqa: E402

BACKENDS = ("asyncio", "trio")


@dataclass
class Running:
    """A server running in a thread."""

    server: Server
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def connect(self, timeout: float = 10.0) -> socket.socket:
        """A raw TCP connection to the server."""
        return socket.create_connection((self.host, self.port), timeout=timeout)


@contextlib.contextmanager
def running(app: Any, backend: str = "asyncio", **options: Any) -> Iterator[Running]:
    """Run ``app`` on a fresh server; stop it (gracefully) on exit."""
    options.setdefault("port", 0)
    options.setdefault("install_signal_handlers", False)
    options.setdefault("lifespan", "off")
    server = Server(Config(app=app, backend=backend, **options))  # type: ignore[arg-type]
    errors: list[BaseException] = []

    def target() -> None:
        try:
            server.run()
        except BaseException as exc:  # reported to the test below
            errors.append(exc)
        finally:
            server.ready.set()

    thread = threading.Thread(target=target, name=f"tether-{backend}", daemon=True)
    thread.start()
    assert server.ready.wait(15), "the server did not start"
    if errors:
        raise errors[0]
    if not thread.is_alive() and server.exit_code:
        raise RuntimeError(f"the server exited with status {server.exit_code}")
    address = server.address
    host = "127.0.0.1" if not isinstance(address, tuple) else address[0]
    port = address[1] if isinstance(address, tuple) else 0
    try:
        yield Running(server, host, port)
    finally:
        server.request_exit()
        thread.join(30)
        assert not thread.is_alive(), "the server did not stop"
        if errors:
            raise errors[0]


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """A directory holding ``slowapp:app`` and ``badstart:app`` (tests.processes), for the
    command-line tests."""
    from tests.processes import FAILING_STARTUP, SLOW_APP

    (tmp_path / "slowapp.py").write_text(SLOW_APP)
    (tmp_path / "badstart.py").write_text(FAILING_STARTUP)
    return tmp_path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The anyio backend the server runs on."""
    return str(request.param)


@pytest.fixture
def serve(backend: str) -> Iterator[Callable[..., Running]]:
    """Start servers for the test, on the test's backend."""
    with contextlib.ExitStack() as stack:

        def start(app: Any, **options: Any) -> Running:
            return stack.enter_context(running(app, backend, **options))

        yield start


def read_response(sock: socket.socket) -> tuple[int, dict[bytes, bytes], bytes]:
    """Read one response with a Content-Length (or none) from a raw socket."""
    data = _PENDING.pop(sock, b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed mid-head: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get(b"content-length", b"0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed mid-body")
        rest += chunk
    _PENDING[sock] = rest[length:]
    return status, headers, rest[:length]


#: Bytes read past the end of a response (pipelined responses), per socket.
_PENDING: weakref.WeakKeyDictionary[socket.socket, bytes] = weakref.WeakKeyDictionary()


def recv_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    out = _PENDING.pop(sock, b"")
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return out
        out += chunk


def websocket_connect(srv: Running) -> socket.socket:
    """A raw connection to ``srv`` upgraded to a WebSocket on ``/`` (nothing read past the 101)."""
    sock = srv.connect()
    sock.sendall(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101")
    return sock


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """One server frame from a raw socket: its opcode and payload."""

    def exactly(n: int) -> bytes:
        out = b""
        while len(out) < n:
            piece = sock.recv(n - len(out))
            assert piece, "connection closed"
            out += piece
        return out

    b0, b1 = exactly(2)
    length = b1 & 0x7F
    if length == 126:
        length = int.from_bytes(exactly(2), "big")
    elif length == 127:
        length = int.from_bytes(exactly(8), "big")
    return b0 & 0x0F, exactly(length)


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame masked with a zero key (the payload goes out as is)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload
