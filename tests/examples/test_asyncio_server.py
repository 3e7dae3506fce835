"""examples/asyncio_server.py over real sockets: keep-alive, pipelining, 100-continue,
deadlines, flow control, errors and the WebSocket upgrade (the tutorial's asyncio server)."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import ROOT
from tests.processes import wait_until
from tether.conformance import parse_responses
from tether.limits import Limits

_spec = importlib.util.spec_from_file_location(
    "asyncio_server", ROOT / "examples" / "asyncio_server.py"
)
assert _spec is not None and _spec.loader is not None
example = importlib.util.module_from_spec(_spec)
sys.modules["asyncio_server"] = example
_spec.loader.exec_module(example)


class Server:
    """The example's protocol on a loop in a thread; remembers every connection it made."""

    def __init__(self, limits: Limits, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or asyncio.new_event_loop()
        self.protocols: list[Any] = []
        ready = threading.Event()

        def factory() -> asyncio.Protocol:
            protocol = example.HttpProtocol(limits)
            self.protocols.append(protocol)
            return protocol

        async def open_listener() -> None:
            self.server = await self.loop.create_server(factory, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()

        def run() -> None:
            self.loop.run_until_complete(open_listener())
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def call(self, function: Any) -> Any:
        """Run ``function()`` on the server's loop and return its result."""

        async def wrapper() -> Any:
            return function()

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(10)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def stop(self) -> None:
        def shut() -> None:
            self.server.close()
            for protocol in self.protocols:
                if protocol.transport is not None and not protocol.transport.is_closing():
                    protocol.transport.abort()
            self.loop.stop()

        self.loop.call_soon_threadsafe(shut)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    limits = getattr(request, "param", example.LIMITS)
    s = Server(limits)
    yield s
    s.stop()


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while piece := sock.recv(65536):
        data += piece
    return data


def test_httpx_keep_alive(server: Server) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as client:
        for _ in range(5):
            assert client.get("/").text == "Hello, world!"
        assert client.post("/", content=b"x" * 1000).text == "you sent 1000 bytes\n"
        chunks = (b"y" * 100 for _ in range(7))  # an iterator: httpx sends it chunked
        response = client.post("/", content=chunks)
        assert response.text == "you sent 700 bytes\n"
        assert response.headers["date"].endswith(" GMT")
        head = client.head("/")
        assert head.headers["content-length"] == "13" and head.content == b""
    assert len(server.protocols) == 1


def test_pipelined_requests_answered_in_order(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(
            b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
            b"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
            b"HEAD /3 HTTP/1.1\r\nHost: a\r\n\r\n"
            b"POST /4 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
            b"GET /5 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        data = read_all(sock)
    assert parse_responses(data, head_only=[False, False, True]) == [200] * 5
    assert data.count(b"Hello, world!") == 2
    assert data.index(b"you sent 3 bytes") < data.index(b"you sent 2 bytes")


def test_expect_continue(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"body")
        data = b""
        while not data.endswith(b"you sent 4 bytes\n"):
            data += sock.recv(65536)
        assert parse_responses(data) == [200]


def test_bad_request_gets_400_and_close(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        data = read_all(sock)
    assert parse_responses(data) == [400]
    assert b"connection: close" in data


def test_body_over_the_limit_gets_413(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % (2 << 20))
        assert parse_responses(read_all(sock)) == [413]


@pytest.mark.parametrize(
    "server", [Limits(head_timeout=0.3, keep_alive_timeout=0.3)], indirect=True
)
def test_slow_head_gets_408_and_idle_connection_closes(server: Server) -> None:
    started = time.monotonic()
    with server.connect() as slow, server.connect() as idle:
        slow.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")  # never finished
        idle.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        first = b""
        while not first.endswith(b"Hello, world!"):
            first += idle.recv(65536)
        assert parse_responses(read_all(slow)) == [408]
        assert read_all(idle) == b""  # the keep-alive deadline: a silent close
    assert time.monotonic() - started < 5  # generous: the deadlines are 0.3 s


def test_reading_pauses_while_the_client_does_not_read(server: Server) -> None:
    """Pipelined requests from a client that reads nothing: the server stops reading, its
    output stays near the transport's high-water mark, and everything is answered later."""
    request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    count = 50_000  # 1.4 MB of requests, 6.5 MB of responses: more than the socket buffers hold
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.settimeout(30)
        sock.connect(("127.0.0.1", server.port))
        sender = threading.Thread(target=sock.sendall, args=(request * count,), daemon=True)
        sender.start()
        protocol = None

        def paused() -> bool:
            nonlocal protocol
            if not server.protocols:
                return False
            protocol = server.protocols[0]
            return bool(server.call(lambda: not protocol.transport.is_reading()))

        assert wait_until(paused, timeout=10)
        buffered = server.call(protocol.transport.get_write_buffer_size)
        assert buffered < 1 << 20  # about asyncio's 64 KiB high-water mark, not megabytes
        answered = 0  # each response ends its body with the only "!" in it
        while answered < count:
            piece = sock.recv(1 << 20)
            assert piece, f"closed after {answered} responses"
            answered += piece.count(b"!")
        sender.join(10)


def test_websocket_echo(server: Server) -> None:
    with connect(f"ws://127.0.0.1:{server.port}/ws", compression=None) as client:
        client.send("hello")
        assert client.recv(timeout=10) == "hello"
        client.send(b"\x00\x01" * 1000)
        assert client.recv(timeout=10) == b"\x00\x01" * 1000
        client.close(code=4000, reason="done")
    assert client.close_code == 4000


def test_websocket_after_pipelined_bytes(server: Server) -> None:
    """A frame sent right behind the upgrade request reaches the WebSocket (trailing_data)."""
    with server.connect() as sock:
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            + b"\x81\x82abcd"
            + bytes(x ^ k for x, k in zip(b"hi", b"ab"))
        )
        data = b""
        while b"hi" not in data.partition(b"\r\n\r\n")[2]:
            data += sock.recv(65536)
        assert data.startswith(b"HTTP/1.1 101 ")
        assert data.endswith(b"\x81\x02hi")


def test_websocket_upgrade_refused_by_the_core(server: Server) -> None:
    """No Sec-WebSocket-Version: the core's answer (426, framed, then close) goes out as is."""
    with server.connect() as sock:
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        data = read_all(sock)
    assert parse_responses(data) == [426]
    assert b"sec-websocket-version: 13\r\n" in data and b"connection: close\r\n" in data


@pytest.mark.parametrize(
    "server", [Limits(ws_ping_interval=0.2, ws_ping_timeout=0.3)], indirect=True
)
def test_websocket_ping_deadline_fails_a_silent_peer(server: Server) -> None:
    """The core's ping timer on loop.call_at: a client that never answers is closed with 1011."""
    with server.connect() as sock:
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        data = read_all(sock)  # we never answer the ping
    frames = data.partition(b"\r\n\r\n")[2]
    assert frames[:1] == b"\x89"  # a ping first
    assert b"\x88" in frames and b"\x03\xf3" in frames  # then a close with 1011


def test_websocket_closing_handshake(server: Server) -> None:
    with connect(f"ws://127.0.0.1:{server.port}/ws") as client:
        client.send("x")
        assert client.recv(timeout=10) == "x"
        client.close()
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=10)


def test_runs_on_uvloop() -> None:
    """uvloop's transports are not asyncio.Transport subclasses; the example runs there too."""
    uvloop = pytest.importorskip("uvloop")
    server = Server(example.LIMITS, uvloop.new_event_loop())
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as client:
            assert client.get("/").text == "Hello, world!"
            assert client.post("/", content=b"abc").text == "you sent 3 bytes\n"
        with connect(f"ws://127.0.0.1:{server.port}/ws") as ws_client:
            ws_client.send("hi")
            assert ws_client.recv(timeout=10) == "hi"
    finally:
        server.stop()


@pytest.mark.parametrize("server", [Limits()], indirect=True)  # the vectors' default limits
def test_spec_vectors_over_a_socket(server: Server) -> None:
    from tests.conformance import check_server, server_vectors

    assert len(server_vectors()) > 150
    assert check_server("127.0.0.1", server.port) == []
