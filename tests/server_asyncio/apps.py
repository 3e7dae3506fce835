"""Small ASGI applications the server tests run (importable as ``tests.server_asyncio.apps``)."""

from __future__ import annotations

from typing import Any


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """WebSocket echo for Autobahn: every text and binary message back as it came."""
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


async def reflect(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """HTTP: read the whole body, answer 200 with it (the conformance vectors' server)."""
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode("ascii"))],
        }
    )
    await send({"type": "http.response.body", "body": body})
