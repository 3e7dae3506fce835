"""The response cycle's rules over a real socket (issue 11 point 2, issue 14), on the WSGI
server: a broken framing promise, and what the access log says for each exchange."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from threaded_helpers import connect, read_until_closed, running, wait_for
from websockets.sync.client import connect as ws_connect

from tether_threaded import WebSocket, websocket_app


def _access(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tether.access"]


def test_a_body_longer_than_its_length_is_a_500_while_nothing_was_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "3")])
        return [b"too long"]

    caplog.set_level(logging.INFO, logger="tether.access")
    with running(app, access_log=True) as server:
        sock = connect(server)
        sock.sendall(b"GET /long HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = read_until_closed(sock)
        assert data.startswith(b"HTTP/1.1 500 ")
        assert data.endswith(b"Internal Server Error\n")
        assert wait_for(lambda: bool(_access(caplog)))
    assert any('"GET /long HTTP/1.1" 500' in line for line in _access(caplog)), _access(caplog)


def test_a_body_shorter_than_its_length_is_a_500_while_nothing_was_sent() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "30")])
        return [b"short"]

    with running(app) as server:
        sock = connect(server)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_until_closed(sock).startswith(b"HTTP/1.1 500 ")


def test_a_body_outgrowing_its_length_later_closes_and_logs_what_was_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Length", "6")])
        yield b"abcd"
        yield b"efgh"

    caplog.set_level(logging.INFO, logger="tether.access")
    with running(app, access_log=True) as server:
        sock = connect(server)
        sock.sendall(b"GET /grow HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_until_closed(sock)
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"\r\n\r\nabcd")
        assert wait_for(lambda: bool(_access(caplog)))
    assert any('"GET /grow HTTP/1.1" 200 4' in line for line in _access(caplog)), _access(caplog)


def test_an_app_transfer_encoding_stays_a_clear_500() -> None:
    """PEP 3333 forbids hop-by-hop headers from the application: its error, answered 500."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Transfer-Encoding", "chunked")])
        return [b"data"]

    with running(app) as server:
        sock = connect(server)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_until_closed(sock).startswith(b"HTTP/1.1 500 ")


def test_a_websocket_session_is_logged_with_its_close_code_and_duration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def handler(ws: WebSocket) -> None:
        ws.send(ws.receive())

    caplog.set_level(logging.INFO, logger="tether.access")
    with running(websocket_app(handler), access_log=True) as server:
        host, port = server.address[:2]
        with ws_connect(f"ws://{host}:{port}/chat", open_timeout=10) as ws:
            ws.send("hi")
            assert ws.recv(timeout=10) == "hi"
        assert wait_for(lambda: any(" ws " in line for line in _access(caplog)))
    lines = [line for line in _access(caplog) if '"GET /chat HTTP/1.1" 101' in line]
    assert len(lines) == 1, _access(caplog)
    note = lines[0].split()[-3:]
    assert note[:2] == ["ws", "1000"], lines[0]
    assert note[2].endswith("s") and float(note[2][:-1]) >= 0


def test_a_file_sent_with_sendfile_keeps_the_connection(tmp_path: Path) -> None:
    """The bytes ``os.sendfile`` moves count towards the declared length: the response ends
    cleanly and the connection serves the next request."""
    path = tmp_path / "data.bin"
    path.write_bytes(b"0123456789" * 1000)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](path.open("rb"))

    with running(app) as server:
        sock = connect(server)
        with sock:
            for _ in range(2):
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                data = b""
                while len(data.partition(b"\r\n\r\n")[2]) < 10_000:
                    piece = sock.recv(65536)
                    assert piece, "the connection closed"
                    data += piece
                assert data.startswith(b"HTTP/1.1 200")
                assert b"content-length: 10000" in data.lower()
