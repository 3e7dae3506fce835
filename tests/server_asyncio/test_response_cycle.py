"""The response cycle's rules over a real socket (issue 11 point 2, issue 14): what a broken
framing promise, trailers where they cannot go, an app's Transfer-Encoding and a client leaving
mean, and what the access log says for each exchange."""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from tests.processes import wait_until
from tests.server_asyncio.conftest import read_response, recv_until_closed


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tether.error" and r.levelno >= 40]


def _access(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tether.access"]


def _start(length: int | None = None, **extra: Any) -> dict[str, Any]:
    headers = [] if length is None else [(b"content-length", b"%d" % length)]
    return {"type": "http.response.start", "status": 200, "headers": headers, **extra}


def test_a_body_longer_than_its_length_is_a_500_while_nothing_was_sent(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(_start(3))
        await send({"type": "http.response.body", "body": b"too long"})

    caplog.set_level(logging.INFO, logger="tether.access")
    srv = serve(app, access_log=True)
    sock = srv.connect()
    sock.sendall(b"GET /long HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, body = read_response(sock)
    assert status == 500
    assert body == b"Internal Server Error\n"
    assert any('"GET /long HTTP/1.1" 500' in line for line in _access(caplog)), _access(caplog)
    # Logged before the 500 is written: it says what the client got, not "closing".
    assert _errors(caplog) == ["connection 1: exception in ASGI application; answering 500"]


def test_a_body_outgrowing_its_length_later_closes_and_logs_what_was_sent(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(_start(6))
        await send({"type": "http.response.body", "body": b"abcd", "more_body": True})
        await send({"type": "http.response.body", "body": b"efgh"})

    caplog.set_level(logging.INFO, logger="tether.access")
    srv = serve(app, access_log=True)
    sock = srv.connect()
    sock.sendall(b"GET /grow HTTP/1.1\r\nHost: x\r\n\r\n")
    data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"\r\n\r\nabcd")
    assert any('"GET /grow HTTP/1.1" 200 4' in line for line in _access(caplog)), _access(caplog)


@pytest.mark.parametrize("path", ["relative/file.txt", "/no/such/file/here"])
def test_a_bad_pathsend_is_a_500(serve: Any, caplog: pytest.LogCaptureFixture, path: str) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(_start())
        await send({"type": "http.response.pathsend", "path": path})

    caplog.set_level(logging.ERROR, logger="tether.error")
    caplog.set_level(logging.INFO, logger="tether.access")
    srv = serve(app, access_log=True)
    sock = srv.connect()
    sock.sendall(b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, _ = read_response(sock)
    assert status == 500
    assert _errors(caplog) == ["connection 1: exception in ASGI application; answering 500"]
    # The access line tells what the client got: the 500, not the app's 200.
    assert any('"GET /file HTTP/1.1" 500' in line for line in _access(caplog)), _access(caplog)


def test_an_exception_after_a_complete_response_keeps_the_connection(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(_start(2))
        await send({"type": "http.response.body", "body": b"ok"})
        if scope["path"] == "/raise":
            raise ValueError("after the end")

    caplog.set_level(logging.ERROR, logger="tether.error")
    srv = serve(app)
    sock = srv.connect()
    sock.sendall(b"GET /raise HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(sock)[::2] == (200, b"ok")
    sock.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(sock)[::2] == (200, b"ok")
    assert _errors(caplog) == [
        "connection 1: exception in ASGI application after completing its response"
    ]


@pytest.mark.parametrize(
    ("request_line", "length"),
    [
        (b"GET /trailers HTTP/1.0", None),
        (b"HEAD /trailers HTTP/1.1", None),
        (b"GET /trailers HTTP/1.1", 4),
    ],
)
def test_trailers_that_cannot_go_are_dropped_quietly(
    serve: Any, caplog: pytest.LogCaptureFixture, request_line: bytes, length: int | None
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(_start(length, trailers=True))
        await send({"type": "http.response.body", "body": b"data"})
        await send({"type": "http.response.trailers", "headers": [(b"x-sum", b"1")]})

    srv = serve(app)
    sock = srv.connect()
    sock.sendall(request_line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
    with caplog.at_level(logging.ERROR, logger="tether.error"):
        data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200")
    assert b"x-sum" not in data
    if not request_line.startswith(b"HEAD"):
        assert data.endswith(b"\r\n\r\ndata")
    assert _errors(caplog) == []


def test_an_app_transfer_encoding_is_ignored(serve: Any) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"transfer-encoding", b"gzip, chunked")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"data"})

    srv = serve(app)
    sock = srv.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200")
    # The server frames the body itself: one Transfer-Encoding, its own.
    assert data.lower().count(b"transfer-encoding") == 1
    assert b"gzip" not in data
    assert data.endswith(b"\r\n\r\n4\r\ndata\r\n0\r\n\r\n")


def test_a_client_leaving_an_event_stream_is_not_an_error(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    left = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass
        left.set()

    caplog.set_level(logging.INFO, logger="tether.access")
    srv = serve(app, access_log=True)
    sock = srv.connect()
    sock.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"data: 1" in sock.recv(65536)
    sock.close()
    assert left.wait(10)
    # The access line is written as the exchange ends, just after the app returned.
    wait_until(lambda: bool(_access(caplog)), timeout=10)
    assert _errors(caplog) == []
    assert any('"GET /events HTTP/1.1" 200' in line for line in _access(caplog)), _access(caplog)


def test_an_aborted_download_is_logged_with_what_was_sent(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(_start(1 << 30))
        while True:
            await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})

    caplog.set_level(logging.INFO, logger="tether.access")
    srv = serve(app, access_log=True)
    sock = srv.connect()
    sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # a reset: the server's next write fails
    assert wait_until(lambda: bool(_access(caplog)), timeout=10)
    (line,) = _access(caplog)
    assert '"GET /big HTTP/1.1" 200 ' in line
    assert 0 < int(line.split()[-1]) < 1 << 30


def test_a_websocket_session_is_logged_with_its_close_code_and_duration(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        message = await receive()
        await send({"type": "websocket.send", "text": message["text"]})
        await send({"type": "websocket.close", "code": 4000})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    caplog.set_level(logging.INFO, logger="tether.access")
    srv = serve(app, access_log=True)
    with ws_connect(srv.ws_url + "/chat", open_timeout=10) as ws:
        ws.send("hi")
        assert ws.recv(timeout=10) == "hi"
        with contextlib.suppress(ConnectionClosed):
            ws.recv(timeout=10)
    assert wait_until(lambda: any(" ws " in line for line in _access(caplog)), timeout=10)
    (line,) = [line for line in _access(caplog) if '"GET /chat HTTP/1.1" 101' in line]
    note = line.split()[-3:]
    assert note[:2] == ["ws", "4000"], line
    assert note[2].endswith("s") and float(note[2][:-1]) >= 0
