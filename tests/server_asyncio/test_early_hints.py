"""ASGI ``http.response.early_hint``: a ``103 Early Hints`` before the response (RFC 8297),
for HTTP/1.1 clients only, seen on a raw socket."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server_asyncio.conftest import recv_until_closed

pytestmark = pytest.mark.timeout(60)

LINKS = [b"</style.css>; rel=preload; as=style", b"</app.js>; rel=preload; as=script"]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    assert "http.response.early_hint" in scope["extensions"]
    await send({"type": "http.response.early_hint", "links": LINKS})
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"2"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": b"ok"})


def test_103_before_the_response(serve: Any) -> None:
    srv = serve(app)
    with srv.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_until_closed(sock)
    interim, _, final = data.partition(b"\r\n\r\n")
    lines = interim.split(b"\r\n")
    assert lines[0].startswith(b"HTTP/1.1 103 ")
    assert [line.partition(b":")[2].strip() for line in lines[1:]] == LINKS
    assert [line.partition(b":")[0].lower() for line in lines[1:]] == [b"link", b"link"]
    assert final.startswith(b"HTTP/1.1 200 ")
    assert final.endswith(b"\r\n\r\nok")


def test_no_103_for_http_1_0(serve: Any) -> None:
    srv = serve(app)
    with srv.connect() as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200 ")
    assert b" 103 " not in data
    assert data.endswith(b"\r\n\r\nok")
