"""Property tests for YOUR ASGI application, in-process: Hypothesis, the Tether core, no sockets.

Point it at your application and run pytest::

    pip install tether hypothesis pytest
    TETHER_TEST_APP=myproject.asgi:app pytest examples/test_my_asgi_app.py

(``TETHER_TEST_EXAMPLES``: how many requests to try, default 100.)

Each request is drawn by ``tether.strategies.requests()`` (valid under RFC 9110 and RFC
9112: any method token, targets with queries, odd but valid field values, bodies by
Content-Length or chunked) and goes the way a server sends it: its bytes are parsed by
the core's ``ServerConnection``, the ASGI scope is built from what it parsed, the
application runs on asyncio, and its response goes back through the core and is read by
``ClientConnection``. The application must never answer 5xx (nor raise), and its response
must be valid HTTP/1.1. A failure is shrunk by Hypothesis to a small request and printed.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from typing import Any

from hypothesis import given, settings

from tether.http1 import (
    NEED_DATA,
    ClientConnection,
    Data,
    EndOfMessage,
    Request,
    Response,
    ServerConnection,
)
from tether.serving import decode_path, split_target
from tether.strategies import GeneratedRequest, requests


def load_app() -> Any:
    """The application named by ``TETHER_TEST_APP`` (``module:attribute``)."""
    module, _, name = os.environ.get("TETHER_TEST_APP", "main:app").partition(":")
    return getattr(importlib.import_module(module), name or "app")


def asgi_scope(request: Request) -> dict[str, Any]:
    """The HTTP connection scope a server gives the application for ``request``."""
    raw_path, query = split_target(request.target)
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": request.http_version.decode(),
        "method": request.method.decode(),
        "scheme": "http",
        "path": decode_path(raw_path),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": [(name, value) for name, value in request.headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def run_app(app: Any, scope: dict[str, Any], body: bytes, server: ServerConnection) -> bytes:
    """Run one request through ``app``; return the response bytes the core produced."""
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    done = asyncio.Event()
    out: list[bytes] = []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop()
        await done.wait()  # the client goes away only once the response is complete
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = [(bytes(n), bytes(v)) for n, v in message.get("headers", [])]
            out.append(server.send(Response(message["status"], headers)))
        elif message["type"] == "http.response.body":
            out.append(server.send(Data(bytes(message.get("body", b"")))))
            if not message.get("more_body", False):
                out.append(server.send(EndOfMessage()))
                done.set()

    await app(scope, receive, send)
    assert done.is_set(), "the application returned without finishing its response"
    return b"".join(out)


def exchange(app: Any, gen: GeneratedRequest) -> tuple[int, bytes]:
    """Send ``gen`` through the core to ``app``; return the status and body a client reads."""
    server = ServerConnection()
    server.receive_data(gen.to_bytes())
    request = server.next_event()
    assert isinstance(request, Request)
    body = b""
    while isinstance(event := server.next_event(), Data):
        body += event.data
    assert isinstance(event, EndOfMessage)
    wire = asyncio.run(run_app(app, asgi_scope(request), body, server))

    client = ClientConnection()  # told what was asked: a HEAD response has no body
    client.send(Request(gen.method, gen.target, list(gen.wire_headers()), gen.version))
    client.send(Data(gen.body))
    client.send(EndOfMessage(list(gen.trailers) if gen.chunks is not None else []))
    client.receive_data(wire)
    status, received = 0, b""
    while not isinstance(answer := client.next_event(), EndOfMessage):
        if answer is NEED_DATA:
            client.receive_data(b"")  # everything was sent: a close-delimited body ends here
        elif isinstance(answer, Response):
            status = answer.status_code
        elif isinstance(answer, Data):
            received += answer.data
    return status, received


@settings(max_examples=int(os.environ.get("TETHER_TEST_EXAMPLES", "100")), deadline=None)
@given(requests())
def test_app_never_answers_5xx(gen: GeneratedRequest) -> None:
    status, _ = exchange(load_app(), gen)
    assert status < 500, f"the application answered {status}"
