"""The application behind the proxies, as ASGI (``asgi_app``) and WSGI (``wsgi_app``).

Imported by the Tether processes the proxy tests start (``--app-dir tests/proxies``), never by
pytest itself. Every HTTP request it receives is appended as one JSON line to the file named by
``$TETHER_PROXY_RECORD``, before it is answered: the smuggling tests compare those lines with
the requests their client sent.

- any path: a JSON line describing the request as the app saw it (method, path, query, the
  client and scheme after proxy headers, the forwarding headers, the body's length and SHA-256,
  the answering pid), then a newline, then the request body itself if ``?echo`` is in the query.
  ``?chunked`` sends that in 4 KiB pieces without a Content-Length (so chunked on the wire).
- ``/sse``: ``text/event-stream`` with ``X-Accel-Buffering: no``: a first event, then (once the
  file ``$TETHER_PROXY_DIR/release-<query>`` exists, or after 5 s) a last event saying whether
  it was released, then the end.
- a WebSocket: echoes every message; the text ``close:<code>`` closes with that code.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

_RECORD = os.environ.get("TETHER_PROXY_RECORD", "")
_DIR = Path(os.environ.get("TETHER_PROXY_DIR", "."))
_FORWARDING = ("x-forwarded-for", "x-forwarded-proto", "forwarded", "x-request-id")
_PIECE = 4096
_RELEASE_WAIT = 5.0


def _describe(
    method: str,
    path: str,
    query: str,
    client: str | None,
    scheme: str,
    headers: dict[str, str],
    body: bytes,
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "method": method,
        "path": path,
        "query": query,
        "client": client,
        "scheme": scheme,
        "length": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "pid": os.getpid(),
    }
    info.update({name: headers.get(name) for name in _FORWARDING})
    if _RECORD:
        with open(_RECORD, "a") as record:
            record.write(json.dumps(info) + "\n")
    return info


def _payload(info: dict[str, Any], body: bytes) -> bytes:
    echo = "echo" in parse_qs(info["query"], keep_blank_values=True)
    return json.dumps(info).encode() + b"\n" + (body if echo else b"")


def _sse_events(query: str, sleep: Callable[[float], None] | None = None) -> Iterator[bytes]:
    """The two events (the caller sleeps between polls when ``sleep`` is given)."""
    yield b"event: first\ndata: hello\n\n"
    released = False
    deadline = time.monotonic() + _RELEASE_WAIT
    release = _DIR / f"release-{query}"
    while time.monotonic() < deadline:
        if release.exists():
            released = True
            break
        if sleep is not None:
            sleep(0.02)
        else:
            yield b""  # the async caller sleeps on an empty piece
    yield f"event: last\ndata: released={released}\n\n".encode()


_SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI side (lifespan, HTTP, WebSocket)."""
    import anyio

    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await _asgi_websocket(receive, send)
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    headers: dict[str, str] = {}
    for key, value in scope["headers"]:  # repeated fields joined, as WSGI's environ has them
        name = key.decode("latin-1")
        joined = headers.get(name)
        text = value.decode("latin-1")
        headers[name] = text if joined is None else f"{joined}, {text}"
    client = scope["client"][0] if scope.get("client") else None
    query = scope["query_string"].decode("latin-1")
    info = _describe(scope["method"], scope["path"], query, client, scope["scheme"], headers, body)
    if scope["path"] == "/sse":
        await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
        for piece in _sse_events(query):
            if piece:
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            else:
                await anyio.sleep(0.02)
        await send({"type": "http.response.body", "body": b""})
        return
    payload = _payload(info, body)
    if "chunked" in parse_qs(query, keep_blank_values=True):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for start in range(0, len(payload), _PIECE):
            piece = payload[start : start + _PIECE]
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    length = str(len(payload)).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", length)]})  # fmt: skip
    await send({"type": "http.response.body", "body": payload})


async def _asgi_websocket(receive: Receive, send: Send) -> None:
    message = await receive()
    assert message["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is not None and text.startswith("close:"):
            await send({"type": "websocket.close", "code": int(text[6:]), "reason": "bye"})
            return
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The WSGI side (HTTP, and WebSocket through ``environ["tether.websocket"]``)."""
    upgrade = environ.get("tether.websocket")
    if upgrade is not None:
        _wsgi_websocket(upgrade)
        return []
    body = environ["wsgi.input"].read()
    headers = {
        name: environ[key]
        for name in _FORWARDING
        if (key := "HTTP_" + name.upper().replace("-", "_")) in environ
    }
    query = environ.get("QUERY_STRING", "")
    info = _describe(
        environ["REQUEST_METHOD"],
        environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""),
        query,
        environ.get("REMOTE_ADDR"),
        environ["wsgi.url_scheme"],
        headers,
        body,
    )
    if info["path"] == "/sse":
        start_response("200 OK", [(k.decode(), v.decode()) for k, v in _SSE_HEADERS])
        return _sse_events(query, sleep=time.sleep)
    payload = _payload(info, body)
    if "chunked" in parse_qs(query, keep_blank_values=True):
        start_response("200 OK", [])
        return (payload[start : start + _PIECE] for start in range(0, len(payload), _PIECE))
    start_response("200 OK", [("Content-Length", str(len(payload)))])
    return [payload]


def _wsgi_websocket(upgrade: Any) -> None:
    from tether_threaded import WebSocketClosed

    ws = upgrade.accept()
    while True:
        try:
            message = ws.receive()
        except WebSocketClosed:
            return
        if isinstance(message, str) and message.startswith("close:"):
            ws.close(int(message[6:]), "bye")
            return
        ws.send(message)
