"""No request leaves a reference cycle behind: its objects go when its last reference does.

A request whose objects form a cycle (an environ holding a bound method of the object that
holds the environ, say) is freed only by the cyclic collector; under load that collector then
runs every few dozen requests over everything they left, and it took a tenth of
``tether-threaded``'s CPU before the cycle was found (bench/_wsgi_servers.py). This is a
count, not a timing: the app turns automatic collection off at import and answers ``/gc`` with
what ``gc.collect()`` found unreachable since the last ``/gc``. Between two of them the test
sends every kind of request a server answers in its own way (plain, with a body, chunked,
streamed back, failing in the app, from a trusted proxy, a WebSocket session), access log on as shipped, over
keep-alive and fresh connections; the second ``/gc`` must find (almost) nothing.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.processes import RUNNING, LogLines, free_port, reaped, spawn_server

ASGI = """
import gc

gc.disable()


async def app(scope, receive, send):
    kind = scope["type"]
    if kind == "lifespan":
        for step in ("startup", "shutdown"):
            await receive()
            await send({"type": f"lifespan.{step}.complete"})
        return
    if kind == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message["text"]})
        return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    path = scope["path"]
    if path == "/gc":
        body = str(gc.collect()).encode()
    elif path == "/fail":
        raise RuntimeError("the app failed (expected by the test)")
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for piece in (b"one ", b"two ", b"three"):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
"""

WSGI = """
import gc

gc.disable()


def app(environ, start_response):
    if "tether.websocket" in environ:
        ws = environ["tether.websocket"].accept()
        while True:
            ws.send(ws.receive())  # until the client closes (WebSocketClosed ends the app)
    path = environ["PATH_INFO"]
    body = environ["wsgi.input"].read()
    if path == "/gc":
        body = str(gc.collect()).encode()
    elif path == "/fail":
        raise RuntimeError("the app failed (expected by the test)")
    if path == "/stream":
        start_response("200 OK", [])
        return (piece for piece in (b"one ", b"two ", b"three"))
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""

#: Requests of each kind per round.
ROUNDS = 20


def _collected(client: httpx.Client) -> int:
    response = client.get("/gc")
    assert response.status_code == 200
    return int(response.text)


def _every_kind(client: httpx.Client, url: str) -> None:
    """One request of each kind the servers treat differently."""
    assert client.get("/", headers={"cookie": "a=1", "x-request-id": "r1"}).status_code == 200
    assert client.post("/", json={"items": list(range(50))}).status_code == 200
    chunks = iter([b"a" * 100, b"b" * 100])
    assert client.post("/", content=chunks).text == "a" * 100 + "b" * 100
    assert client.get("/stream").text == "one two three"
    assert client.get("/fail").status_code == 500
    proxied = client.get(
        "/", headers={"x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "https"}
    )
    assert proxied.status_code == 200
    with httpx.Client(base_url=url, timeout=10) as fresh:  # a connection of its own
        assert fresh.get("/").status_code == 200
    # A WebSocket session (permessage-deflate: the websockets client offers it).
    with connect(url.replace("http", "ws", 1) + "/ws", open_timeout=10) as ws:
        for text in ("one", "two" * 100):
            ws.send(text)
            assert ws.recv(timeout=10) == text


@pytest.mark.parametrize("server", ["asyncio", "trio", "threaded"])
def test_requests_leave_no_cycles(tmp_path: Path, server: str) -> None:
    port = free_port()
    # The access log on (as shipped: log level info), to a pipe the test reads.
    proc = spawn_server(server, tmp_path, (ASGI, WSGI), "--port", str(port))
    with reaped(proc):
        LogLines(proc).wait_for(RUNNING)
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=10) as client:
            _every_kind(client, url)  # first-use caches, lazy imports: before the count starts
            _collected(client)
            for _ in range(ROUNDS):
                _every_kind(client, url)
            found = _collected(client)
    # 160 requests and sessions: a cycle in any kind would leave at least 20 objects, most leave dozens.
    assert found < ROUNDS, f"{found} objects were left in reference cycles by {8 * ROUNDS} requests"
