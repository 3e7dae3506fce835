"""The WebSocket handshake as ASGI frameworks drive it: ``receive()`` before ``websocket.accept``
(Quart), ``websocket.close`` before accepting and then reading until the disconnect (Django
Channels), a subprotocol the client did not offer, and the scope's ``asgi`` version."""

from __future__ import annotations

import importlib.util
import logging
import socket
import threading
import time
from typing import Any

import anyio
import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.server_asyncio.conftest import running

pytestmark = pytest.mark.timeout(60)

UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def _head(sock: socket.socket) -> bytes:
    """The response head the server sent (the socket has a timeout: a hang fails the test)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.partition(b"\r\n\r\n")[0]


class TestReceiveBeforeAccept:
    """Quart's shape: one task waits in ``receive()`` while another accepts, then echoes."""

    def test_frames_after_the_101_reach_the_waiting_receive(self, serve: Any) -> None:
        ended: list[dict[str, Any]] = []
        done = threading.Event()

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "websocket":
                return
            assert (await receive())["type"] == "websocket.connect"
            waiting = anyio.Event()

            async def echo() -> None:
                waiting.set()  # receive() is entered before this task yields
                while True:
                    message = await receive()
                    if message["type"] == "websocket.disconnect":
                        ended.append(message)
                        done.set()
                        return
                    await send({"type": "websocket.send", "text": "echo " + message["text"]})

            async with anyio.create_task_group() as group:
                group.start_soon(echo)
                await waiting.wait()
                await send({"type": "websocket.accept"})

        srv = serve(app)
        with connect(srv.ws_url + "/ws", open_timeout=10, close_timeout=10) as ws:
            ws.send("one")
            assert ws.recv(timeout=10) == "echo one"
            ws.send("two")
            assert ws.recv(timeout=10) == "echo two"
        assert ws.close_code == 1000  # the client's close was answered (not 1006)
        assert done.wait(10)
        assert ended[0]["code"] == 1000

    @pytest.mark.skipif(importlib.util.find_spec("quart") is None, reason="quart not installed")
    def test_quart_echo(self) -> None:
        from quart import Quart, websocket

        quart_app = Quart(__name__)

        @quart_app.websocket("/ws")
        async def ws_echo() -> None:
            while True:
                data = await websocket.receive()
                await websocket.send(f"echo {data}")

        with running(quart_app, "asyncio") as srv:
            with connect(srv.ws_url + "/ws", open_timeout=10, close_timeout=10) as ws:
                for text in ("a", "b", "c"):
                    ws.send(text)
                    assert ws.recv(timeout=10) == f"echo {text}"
            assert ws.close_code == 1000

    def test_client_leaving_before_the_answer_is_a_disconnect(self, serve: Any) -> None:
        got: list[dict[str, Any]] = []
        done = threading.Event()

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "websocket":
                return
            await receive()
            got.append(await receive())  # never accepted: the client leaves first
            done.set()

        srv = serve(app)
        with srv.connect() as sock:
            sock.sendall(UPGRADE)
        assert done.wait(10)
        assert got == [{"type": "websocket.disconnect", "code": 1006, "reason": ""}]


class TestCloseBeforeAccept:
    """``websocket.close`` before accepting is an HTTP 403 sent at once (ASGI), and the
    app's later ``receive()`` gets ``websocket.disconnect``."""

    def test_403_while_the_app_waits_in_receive(self, backend: str) -> None:
        got: list[dict[str, Any]] = []
        received = threading.Event()

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "websocket":
                return
            await receive()
            await send({"type": "websocket.close", "code": 1000})
            got.append(await receive())
            received.set()

        with running(app, backend, timeout_graceful_shutdown=30) as srv:
            sock = srv.connect(timeout=10)
            sock.sendall(UPGRADE)
            head = _head(sock)
            assert head.startswith(b"HTTP/1.1 403 ")
            assert b"\r\nconnection: close" in head.lower()
            assert received.wait(10)
            assert got[0] == {"type": "websocket.disconnect", "code": 1006, "reason": ""}
            started = time.monotonic()
        # Shutdown, with this client still connected, did not wait for it.
        assert time.monotonic() - started < 10
        sock.close()

    def test_channels_style_consumer(self, serve: Any) -> None:
        """A mimic of Channels' AsyncWebsocketConsumer: ``connect()`` closes (refuses), then the
        dispatch loop reads until ``websocket.disconnect`` and returns."""
        events: list[str] = []
        finished = threading.Event()

        class Consumer:
            def __init__(self, receive: Any, send: Any) -> None:
                self.receive, self.send = receive, send

            async def websocket_connect(self, message: dict[str, Any]) -> None:
                await self.connect()

            async def connect(self) -> None:
                await self.close()

            async def close(self, code: int | None = None) -> None:
                await self.send({"type": "websocket.close", "code": code or 1000})

            async def websocket_disconnect(self, message: dict[str, Any]) -> None:
                raise StopAsyncIteration

            async def __call__(self) -> None:
                try:
                    while True:
                        message = await self.receive()
                        events.append(message["type"])
                        handler = getattr(self, message["type"].replace(".", "_"))
                        await handler(message)
                except StopAsyncIteration:
                    finished.set()

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "websocket":
                await Consumer(receive, send)()

        srv = serve(app)
        started = time.monotonic()
        with pytest.raises(InvalidStatus) as caught:
            connect(srv.ws_url + "/ws", open_timeout=10)
        assert caught.value.response.status_code == 403
        assert time.monotonic() - started < 10
        assert finished.wait(10)
        assert events == ["websocket.connect", "websocket.disconnect"]


def test_unoffered_subprotocol_fails_the_app(serve: Any, caplog: pytest.LogCaptureFixture) -> None:
    errors: list[BaseException] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        try:
            await send({"type": "websocket.accept", "subprotocol": "graphql-ws"})
        except RuntimeError as exc:
            errors.append(exc)
            raise

    srv = serve(app)
    with caplog.at_level(logging.ERROR, logger="tether.error"):
        with pytest.raises(InvalidStatus) as caught:
            connect(srv.ws_url + "/ws", subprotocols=["chat"], open_timeout=10)
        assert caught.value.response.status_code == 500
        with pytest.raises(InvalidStatus):
            connect(srv.ws_url + "/ws", open_timeout=10)
    assert len(errors) == 2
    assert "did not offer" in str(errors[0])
    assert caplog.text.count("exception in ASGI application (WebSocket)") == 2


def test_scope_asgi_versions_and_own_dict(serve: Any) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(dict(scope["asgi"]))
        scope["asgi"]["changed_by_app"] = True
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close"})
            return
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    srv = serve(app)
    with httpx.Client(base_url=srv.url) as client:
        assert client.get("/").status_code == 204
        assert client.get("/").status_code == 204
    with connect(srv.ws_url + "/ws", open_timeout=10):
        pass
    with connect(srv.ws_url + "/ws", open_timeout=10):
        pass
    http1, http2, ws1, ws2 = seen
    assert http1 == http2 == {"version": "3.0", "spec_version": "2.4"}
    assert ws1 == ws2 == {"version": "3.0", "spec_version": "2.5"}
