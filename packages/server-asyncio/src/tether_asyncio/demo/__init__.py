"""The demo app behind ``tether serve``: a tour of the toolkit in one plain ASGI application.

- ``GET /``: a page that drives everything below from the browser.
- ``POST /upload``: a ``multipart/form-data`` upload, parsed while it streams in by
  :mod:`tether.multipart`; answers each part's name, file name, size and SHA-256.
- ``GET /download``: a large generated file (``?size=`` bytes, 64 MiB by default) with ``ETag`` and
  ``Last-Modified``; conditional requests through :mod:`tether.conditional` (304/412) and
  ``Range`` through :mod:`tether.ranges` (206, ``multipart/byteranges``, 416).
- ``/ws``: a WebSocket echo (text and bytes).
- ``GET /clock``: server-sent events (:mod:`tether.sse`), the server's time every second
  (``?count=`` stops early).
- ``GET /favicon.svg``: the page's icon (so browsers do not log a 404 on every load).

No framework: the app speaks ASGI directly, so every header it sends is visible here.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from importlib import resources
from typing import Any

import anyio

from tether import sse
from tether.conditional import ETag, Precondition, evaluate_preconditions, format_last_modified
from tether.errors import RemoteProtocolError
from tether.multipart import (
    End,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    parse_boundary,
)
from tether.ranges import byteranges, evaluate_range
from tether_asyncio._types import Message, Receive, Scope, Send

#: The downloadable file is generated from this 64 KiB block, so any byte is ``offset % 251``.
_BLOCK = bytes(i % 251 for i in range(251 * 261))
_DEFAULT_SIZE = 64 * 1024 * 1024
_MAX_SIZE = 1 << 34
_CHUNK = 64 * 1024
#: The page's icon: a tether ring.
_FAVICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    b'<circle cx="8" cy="8" r="6" fill="none" stroke="#2a6" stroke-width="3"/></svg>'
)
#: A fixed modification time keeps the validators stable across restarts.
_LAST_MODIFIED = 1_700_000_000.0


def generated_bytes(offset: int, size: int) -> bytes:
    """Bytes ``offset`` to ``offset + size`` of the generated file (byte ``i`` is ``i % 251``)."""
    start = offset % 251
    out = bytearray()
    while len(out) < size:
        piece = _BLOCK[start : start + size - len(out)]
        out += piece
        start = 0
    return bytes(out)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The demo ASGI application."""
    kind = scope["type"]
    if kind == "lifespan":
        await _lifespan(scope, receive, send)
    elif kind == "websocket":
        await _echo(receive, send)
    elif kind == "http":
        path = scope["path"]
        method = scope["method"]
        if path == "/" and method in ("GET", "HEAD"):
            await _page(send)
        elif path == "/upload" and method == "POST":
            await _upload(scope, receive, send)
        elif path == "/download" and method in ("GET", "HEAD"):
            await _download(scope, send)
        elif path == "/clock" and method == "GET":
            await _clock(scope, receive, send)
        elif path in ("/favicon.svg", "/favicon.ico") and method in ("GET", "HEAD"):
            await _text(send, 200, _FAVICON, b"image/svg+xml")
        else:
            await _text(send, 404, b"Not Found\n")


async def _lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["started"] = time.time()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _text(send: Send, status: int, body: bytes, content_type: bytes = b"text/plain") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type + b"; charset=utf-8"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _page(send: Send) -> None:
    page = resources.files(__package__).joinpath("index.html").read_bytes()
    await _text(send, 200, page, b"text/html")


async def _upload(scope: Scope, receive: Receive, send: Send) -> None:
    headers = scope["headers"]
    content_type = next((v for k, v in headers if k == b"content-type"), b"")
    try:
        parser = MultipartParser(parse_boundary(content_type))
    except RemoteProtocolError as exc:
        await _text(send, exc.status_hint, f"{exc}\n".encode())
        return
    parts: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    digest = hashlib.sha256()
    try:
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            more = message.get("more_body", False)
            events = parser.feed(message.get("body", b""))
            if not more:
                events += parser.close()
            for event in events:
                if isinstance(event, PartStart):
                    current = {"name": event.name, "filename": event.filename, "size": 0}
                    digest = hashlib.sha256()
                elif isinstance(event, PartData):
                    current["size"] += len(event.data)
                    digest.update(event.data)
                elif isinstance(event, PartEnd):
                    current["sha256"] = digest.hexdigest()
                    parts.append(current)
                elif isinstance(event, End):
                    pass
    except RemoteProtocolError as exc:
        await _text(send, exc.status_hint, f"{exc}\n".encode())
        return
    body = json.dumps({"parts": parts}, indent=1).encode() + b"\n"
    await _text(send, 200, body, b"application/json")


async def _download(scope: Scope, send: Send) -> None:
    query = dict(part.split(b"=", 1) for part in scope["query_string"].split(b"&") if b"=" in part)
    try:
        size = int(query.get(b"size", _DEFAULT_SIZE))
    except ValueError:
        size = -1
    if not 0 <= size <= _MAX_SIZE:
        await _text(send, 400, b"size must be a number of bytes\n")
        return
    method = scope["method"].encode("ascii")
    headers = scope["headers"]
    etag = ETag(b"demo-%d" % size)
    now = time.time()
    validators = [
        (b"etag", etag.to_bytes()),
        (b"last-modified", format_last_modified(_LAST_MODIFIED)),
        (b"accept-ranges", b"bytes"),
    ]
    outcome = evaluate_preconditions(
        method, headers, etag=etag, last_modified=_LAST_MODIFIED, now=now
    )
    if outcome is not Precondition.PROCEED:
        status = outcome.status
        assert status is not None
        await send({"type": "http.response.start", "status": status, "headers": validators})
        await send({"type": "http.response.body", "body": b""})
        return
    decision = evaluate_range(
        method, headers, length=size, etag=etag, last_modified=_LAST_MODIFIED, now=now
    )
    content_type = b"application/octet-stream"
    base = [*validators, (b"content-disposition", b'attachment; filename="demo.bin"')]
    if decision.status == 416:
        await send(
            {
                "type": "http.response.start",
                "status": 416,
                "headers": [*base, *decision.headers, (b"content-length", b"0")],
            }
        )
        await send({"type": "http.response.body", "body": b""})
        return
    if decision.status == 206 and len(decision.ranges) > 1:
        layout = byteranges(
            decision.ranges,
            size,
            boundary=secrets.token_hex(16).encode(),
            content_type=content_type,
        )
        await send(
            {"type": "http.response.start", "status": 206, "headers": [*base, *layout.headers()]}
        )
        for piece in layout.pieces(generated_bytes, _CHUNK):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if decision.status == 206:
        start, stop = decision.ranges[0].start, decision.ranges[0].stop
        extra = list(decision.headers)
    else:
        start, stop, extra = 0, size, []
    await send(
        {
            "type": "http.response.start",
            "status": decision.status,
            "headers": [
                *base,
                *extra,
                (b"content-type", content_type),
                (b"content-length", b"%d" % (stop - start)),
            ],
        }
    )
    offset = start
    while offset < stop:
        n = min(_CHUNK, stop - offset)
        # Each send waits while the client is slow: the server never buffers the whole file.
        await send(
            {"type": "http.response.body", "body": generated_bytes(offset, n), "more_body": True}
        )
        offset += n
    await send({"type": "http.response.body", "body": b""})


async def _clock(scope: Scope, receive: Receive, send: Send) -> None:
    query = dict(part.split(b"=", 1) for part in scope["query_string"].split(b"&") if b"=" in part)
    try:
        count = int(query[b"count"]) if b"count" in query else None
    except ValueError:
        count = None
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": list(sse.HEADERS),
        }
    )

    async def tick(group_scope: anyio.CancelScope) -> None:
        sent = 0
        while count is None or sent < count:
            stamp = time.strftime("%H:%M:%S", time.gmtime())
            event = sse.encode(f"{stamp} UTC", event="tick", id=str(sent))
            await send({"type": "http.response.body", "body": event, "more_body": True})
            sent += 1
            if count is None or sent < count:
                await anyio.sleep(1)
        await send({"type": "http.response.body", "body": b""})
        group_scope.cancel()

    async def watch(group_scope: anyio.CancelScope) -> None:
        message: Message = await receive()
        while message["type"] != "http.disconnect":
            message = await receive()
        group_scope.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(tick, group.cancel_scope)
        group.start_soon(watch, group.cancel_scope)


async def _echo(receive: Receive, send: Send) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
