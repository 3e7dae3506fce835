"""Sample ASGI applications for ``examples/test_my_asgi_app.py``: one correct, two with bugs."""

from __future__ import annotations

from typing import Any

Scope = dict[str, Any]


async def _read_body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return body


async def _answer(send: Any, status: int, text: bytes) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(text))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text})


async def correct(scope: Scope, receive: Any, send: Any) -> None:
    """Echoes the method, path, query parameters and body size."""
    body = await _read_body(receive)
    pairs = [p.partition(b"=")[::2] for p in scope["query_string"].split(b"&") if p]
    text = b"%s %s %r %d" % (scope["method"].encode(), scope["raw_path"], pairs, len(body))
    await _answer(send, 200, text)


async def naive_query(scope: Scope, receive: Any, send: Any) -> None:
    """Planted bug: a query parameter without '=' raises (a 500 in any server)."""
    body = await _read_body(receive)
    query = scope["query_string"].decode()
    params = dict(p.split("=") for p in query.split("&")) if query else {}
    await _answer(send, 200, b"%d params, %d bytes" % (len(params), len(body)))


async def ascii_headers(scope: Scope, receive: Any, send: Any) -> None:
    """Planted bug: answers 500 to a field value that is not ASCII (obs-text is valid)."""
    await _read_body(receive)
    try:
        agent = [v.decode("ascii") for n, v in scope["headers"]]
    except UnicodeDecodeError:
        await _answer(send, 500, b"internal error")
        return
    await _answer(send, 200, b"%d fields" % len(agent))
