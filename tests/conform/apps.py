"""Applications for conformance runs: each reads the whole request body, then answers its size.

Reading the body matters: a server only meets a body's framing errors when its application
asks for the body.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


async def asgi_echo(
    scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
) -> None:
    """ASGI: read the body, answer 200 with its length."""
    if scope["type"] != "http":
        return
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"%d\n" % size
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


def wsgi_echo(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """WSGI: read the body, answer 200 with its length."""
    size = len(environ["wsgi.input"].read())
    body = b"%d\n" % size
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


#: The size of the response at /big (for the write-timeout probe's --large-path), and of
#: its pieces.
BIG = 4 << 20
CHUNK = 64 << 10


async def asgi_echo_ws(
    scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
) -> None:
    """ASGI: ``asgi_echo`` for HTTP; a WebSocket echoes every message until closed."""
    if scope["type"] == "http" and scope["path"] == "/big":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % BIG)],
            }
        )
        for _ in range(BIG // CHUNK):
            await send({"type": "http.response.body", "body": b"x" * CHUNK, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if scope["type"] != "websocket":
        await asgi_echo(scope, receive, send)
        return
    message = await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


def wsgi_echo_ws(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """WSGI on tether-threaded: ``wsgi_echo`` for HTTP; a WebSocket echoes every message."""
    upgrade = environ.get("tether.websocket")
    if environ["PATH_INFO"] == "/big":
        start_response("200 OK", [("Content-Length", str(BIG))])
        return (b"x" * CHUNK for _ in range(BIG // CHUNK))
    if upgrade is None:
        return wsgi_echo(environ, start_response)
    ws = upgrade.accept(compress=False)
    try:
        while True:
            ws.send(ws.receive())
    except Exception as exc:  # WebSocketClosed: the client closed or broke the protocol
        if type(exc).__name__ != "WebSocketClosed":
            raise
    return []


def wsgi_silent_ws(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """WSGI on tether-threaded: a WebSocket that reads every message and answers none."""
    upgrade = environ.get("tether.websocket")
    if upgrade is None:
        return wsgi_echo(environ, start_response)
    ws = upgrade.accept(compress=False)
    try:
        while True:
            ws.receive()
    except Exception as exc:  # WebSocketClosed: the client closed or broke the protocol
        if type(exc).__name__ != "WebSocketClosed":
            raise
    return []
