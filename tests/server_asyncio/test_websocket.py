"""ASGI WebSocket through the anyio server, driven by the websockets library (asyncio and trio)."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.server_asyncio.apps import echo
from tests.server_asyncio.conftest import read_frame, running, websocket_connect

pytestmark = pytest.mark.timeout(60)


def test_echo_text_and_bytes_with_deflate(serve: Any) -> None:
    srv = serve(echo)
    with connect(srv.ws_url + "/") as ws:
        # permessage-deflate is on by default (RFC 7692).
        assert "permessage-deflate" in ws.response.headers["sec-websocket-extensions"]
        ws.send("héllo")
        assert ws.recv() == "héllo"
        ws.send(b"\x00\xff" * 50_000)
        assert ws.recv() == b"\x00\xff" * 50_000
    assert ws.close_code == 1000


def test_no_deflate_when_disabled(serve: Any) -> None:
    srv = serve(echo, ws_per_message_deflate=False)
    with connect(srv.ws_url + "/") as ws:
        assert "sec-websocket-extensions" not in ws.response.headers
        ws.send("x")
        assert ws.recv() == "x"


def test_scope_subprotocol_headers_and_server_close(serve: Any) -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        assert (await receive())["type"] == "websocket.connect"
        await send(
            {
                "type": "websocket.accept",
                "subprotocol": "chat.v2",
                "headers": [(b"x-extra", b"yes")],
            }
        )
        message = await receive()
        await send({"type": "websocket.send", "text": "got " + message["text"]})
        await send({"type": "websocket.close", "code": 4001, "reason": "done here"})

    srv = serve(app)
    with connect(srv.ws_url + "/chat/%C3%A9?room=1", subprotocols=["chat.v1", "chat.v2"]) as ws:
        assert ws.subprotocol == "chat.v2"
        assert ws.response.headers["x-extra"] == "yes"
        assert ws.response.headers["server"] == "tether"
        ws.send("hi")
        assert ws.recv() == "got hi"
        with pytest.raises(ConnectionClosed):
            ws.recv()
    assert ws.close_code == 4001
    assert ws.close_reason == "done here"
    scope = scopes[0]
    assert scope["type"] == "websocket"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/chat/é"
    assert scope["raw_path"] == b"/chat/%C3%A9"
    assert scope["query_string"] == b"room=1"
    assert scope["subprotocols"] == ["chat.v1", "chat.v2"]
    assert "websocket.http.response" in scope["extensions"]


def test_client_close_reaches_the_app(serve: Any) -> None:
    got: list[dict[str, Any]] = []
    done = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        got.append(await receive())
        done.set()

    srv = serve(app)
    with connect(srv.ws_url) as ws:
        ws.close(code=4321, reason="bye")
    assert done.wait(10)
    assert got == [{"type": "websocket.disconnect", "code": 4321, "reason": "bye"}]


def test_close_before_accept_is_403(serve: Any) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close"})

    srv = serve(app)
    with pytest.raises(InvalidStatus) as info:
        connect(srv.ws_url)
    assert info.value.response.status_code == 403


def test_denial_response(serve: Any) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"who are you?"})

    srv = serve(app)
    with pytest.raises(InvalidStatus) as info:
        connect(srv.ws_url)
    response = info.value.response
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.body == b"who are you?"


def test_invalid_upgrade_is_refused_without_calling_the_app(serve: Any) -> None:
    calls: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        calls.append(scope["type"])

    srv = serve(app)
    response = httpx.get(
        srv.url,
        headers={"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"},
    )
    # RFC 6455 4.2.1: no valid Sec-WebSocket-Key, so the handshake fails with 400.
    assert response.status_code == 400
    assert calls == []


def test_app_error_after_accept_closes_1011(serve: Any) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        raise RuntimeError("boom")

    srv = serve(app)
    with connect(srv.ws_url) as ws, pytest.raises(ConnectionClosed):
        ws.recv()
    assert ws.close_code == 1011


def test_shutdown_closes_websockets_with_1001(backend: str) -> None:
    with running(echo, backend) as srv, connect(srv.ws_url) as ws:
        ws.send("x")
        assert ws.recv() == "x"
        srv.server.request_exit()
        with pytest.raises(ConnectionClosed):
            ws.recv()
    # RFC 6455 7.4.1: 1001 "going away", such as a server going down.
    assert ws.close_code == 1001


def test_ping_and_ping_timeout(serve: Any) -> None:
    """Keep-alive pings go out every interval; a peer that never answers is failed with 1011."""
    srv = serve(echo, ws_ping_interval=0.2, ws_ping_timeout=0.4)
    sock = websocket_connect(srv)
    opcode, _ = read_frame(sock)
    assert opcode == 0x9  # ping
    while True:
        opcode, payload = read_frame(sock)
        if opcode == 0x8:  # close
            break
    assert int.from_bytes(payload[:2], "big") == 1011
    sock.close()


def test_close_handshake_timeout(serve: Any) -> None:
    """RFC 6455 7.1.1: after our close frame the server waits for the peer's, then gives up."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})

    srv = serve(app, ws_close_timeout=0.3)
    sock = websocket_connect(srv)
    opcode, payload = read_frame(sock)
    assert (opcode, payload[:2]) == (0x8, (1000).to_bytes(2, "big"))
    # We never answer the close: the server closes TCP after ws_close_timeout.
    assert sock.recv(10) == b""
    sock.close()
