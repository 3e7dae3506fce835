"""examples/blocking_server.py over real sockets: httpx, keep-alive, pipelining, 100-continue."""

from __future__ import annotations

import importlib.util
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ROOT
from tether.conformance import parse_responses

_spec = importlib.util.spec_from_file_location(
    "blocking_server", ROOT / "examples" / "blocking_server.py"
)
assert _spec is not None and _spec.loader is not None
example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(example)


class Server:
    """The example's handler behind an accept loop that counts connections."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=example.handle, args=(sock,), daemon=True).start()

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return sock


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.listener.close()


def read_until(sock: socket.socket, count: int) -> list[int]:
    data = b""
    while len(parse_responses(data)) < count:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return parse_responses(data)


def test_httpx_keep_alive(server: Server) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as client:
        for _ in range(5):
            assert client.get("/").text == "you sent 0 bytes\n"
        assert client.post("/", content=b"x" * 1000).text == "you sent 1000 bytes\n"
        chunks = (b"y" * 100 for _ in range(7))  # an iterator: httpx sends it chunked
        response = client.post("/", content=chunks)
        assert response.text == "you sent 700 bytes\n"
        assert response.headers["date"].endswith(" GMT")
    assert server.accepted == 1


def test_pipelined_requests_answered_in_order(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(
            b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
            b"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        data = b""
        while piece := sock.recv(65536):
            data += piece
    assert parse_responses(data) == [200, 200, 200]
    assert data.count(b"you sent 0 bytes") == 2 and b"you sent 3 bytes" in data


def test_expect_continue(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"body")
        assert read_until(sock, 1) == [200]


def test_bad_request_gets_400_and_close(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        data = b""
        while piece := sock.recv(65536):
            data += piece
    assert parse_responses(data) == [400]
    assert b"connection: close" in data


def test_spec_vectors_over_a_socket(server: Server) -> None:
    from tests.conformance import check_server, server_vectors

    assert len(server_vectors()) > 150
    assert check_server("127.0.0.1", server.port) == []
