"""The per-request path of ``tether serve`` keeps its behaviour where it was made cheaper.

- :class:`FastStream` writes in two steps (``write()`` hands bytes to the transport without a
  coroutine, ``flush()`` waits): ``write()`` must still ask for a flush when the peer is slow
  and when its write budget is spent, so fairness and back-pressure hold.
- The access line is logged without logging's walk up the stack; its record must still name
  the function and file that log it, as ``logger.info()`` would have.
- One request is served inline in the connection's loop, with what does not change between
  requests bound once per connection: each request still gets its own scope (its own
  ``asgi`` and lifespan ``state`` dicts) and its own ``receive``/``send``, which an app may
  keep and call late without touching a later request; a health probe is answered without the
  app whether or not a concurrency limit is set; a single read never exceeds the level at
  which reading pauses (:class:`ReadBuffer` refuses to be larger).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
import threading
from typing import Any

import pytest

from tests.server_asyncio.conftest import read_response, running
from tether_asyncio._stream import HIGH_WATER, SEND_BUDGET, SEND_COST, FastStream, ReadBuffer
from tether_server import tagging


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_access_record_names_the_function_that_logs_it() -> None:
    logger = logging.getLogger("tether.access")
    keep = _Keep()
    level = logger.level
    logger.addHandler(keep)
    logger.setLevel(logging.INFO)
    try:
        with running(_ok, "asyncio") as server, server.connect() as sock:
            sock.sendall(b"GET /x?y=1 HTTP/1.1\r\nHost: t\r\n\r\n")
            data = b""
            while not data.endswith(b"ok"):
                chunk = sock.recv(4096)
                assert chunk, "the server closed the connection"
                data += chunk
            port = sock.getsockname()[1]
    finally:
        logger.removeHandler(keep)
        logger.setLevel(level)
    (record,) = keep.records
    assert record.getMessage() == f'127.0.0.1:{port} - "GET /x?y=1 HTTP/1.1" 200 2'
    assert (record.name, record.levelno) == ("tether.access", logging.INFO)
    lines, first = inspect.getsourcelines(tagging.log_access)
    assert record.funcName == "log_access"
    assert record.pathname == tagging.log_access.__code__.co_filename
    assert first <= record.lineno < first + len(lines)


def test_fast_stream_write_asks_for_a_flush_when_its_budget_is_spent() -> None:
    async def main() -> list[bool]:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        try:
            _, stream = await loop.connect_accepted_socket(FastStream, ours)
            piece = b"x" * 100
            writes = -(-SEND_BUDGET // (len(piece) + SEND_COST))  # the one that overdraws
            asked = [stream.write(piece) for _ in range(writes)]
            await stream.flush()  # yields once, and the budget starts again
            asked.append(stream.write(piece))
            stream.close()
            return asked
        finally:
            theirs.close()

    asked = asyncio.run(main())
    assert asked[-2] and not any(asked[:-2]) and not asked[-1], asked


def test_fast_stream_write_asks_for_a_flush_while_the_peer_is_slow() -> None:
    size = 16 * 1024 * 1024  # more than the kernel's buffers take: the transport keeps the rest
    received = bytearray()

    async def main() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        ours.setblocking(False)

        def read() -> None:
            while len(received) < size:
                chunk = theirs.recv(1 << 20)
                if not chunk:
                    return
                received.extend(chunk)

        reader = threading.Thread(target=read)
        try:
            _, stream = await loop.connect_accepted_socket(FastStream, ours)
            asked = stream.write(b"y" * size)
            reader.start()  # the peer starts reading only now
            await asyncio.wait_for(stream.flush(), 30)
            after = stream.write(b"")
            stream.close()
            return asked, after
        finally:
            if reader.is_alive():
                await asyncio.to_thread(reader.join, 30)
            theirs.close()

    asked, after = asyncio.run(main())
    assert asked and not after
    assert len(received) == size


def _get(sock: socket.socket, path: str) -> tuple[int, bytes]:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    status, _, body = read_response(sock)
    return status, body


def test_a_late_call_to_an_earlier_requests_receive_or_send_touches_no_later_one(
    serve: Any,
) -> None:
    kept: list[Any] = []
    late: list[object] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/first":
            kept.extend((receive, send))  # kept past the request's end
        elif kept:
            old_receive, old_send = kept
            late.append(await old_receive())
            try:
                await old_send({"type": "http.response.body", "body": b"stale"})
            except Exception as exc:  # the old response is complete: refused
                late.append(type(exc))
            else:
                late.append("sent")
        body = scope["path"].encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    srv = serve(app)
    with srv.connect() as sock:
        assert _get(sock, "/first") == (200, b"/first")
        assert _get(sock, "/second") == (200, b"/second")
        assert _get(sock, "/third") == (200, b"/third")  # the connection is still good
    assert late[0] == {"type": "http.disconnect"}
    assert late[1] != "sent"
    assert late[2] == {"type": "http.disconnect"}


def test_each_request_on_a_connection_gets_its_own_scope(serve: Any) -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    scope["state"]["shared"] = "from lifespan"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        scopes.append(scope)
        # What one request does to its scope is seen by no other.
        scope["asgi"]["mine"] = scope["path"]
        scope["state"]["mine"] = scope["path"]
        scope["method"] = "CHANGED"
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]}
        )
        await send({"type": "http.response.body", "body": b""})

    srv = serve(app, lifespan="on")
    with srv.connect() as sock:
        assert _get(sock, "/a") == (200, b"")
        assert _get(sock, "/b?x=1") == (200, b"")
    first, second = scopes
    assert first is not second
    assert first["asgi"] is not second["asgi"] and first["state"] is not second["state"]
    assert second["asgi"] == {"version": "3.0", "spec_version": "2.4", "mine": "/b"}
    assert second["state"] == {"shared": "from lifespan", "mine": "/b"}
    assert (second["method"], second["path"], second["query_string"]) == ("CHANGED", "/b", b"x=1")
    assert first["client"] == second["client"] and first["server"] == second["server"]


@pytest.mark.parametrize("limit", [None, 5])
def test_health_probe_is_answered_without_the_app(serve: Any, limit: int | None) -> None:
    calls: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        await _ok(scope, receive, send)

    srv = serve(app, health_path_prefix="/_tether", limit_concurrency=limit)
    with srv.connect() as sock:
        status, _ = _get(sock, "/_tether/live")
        assert status == 200
        assert _get(sock, "/app") == (200, b"ok")
        assert _get(sock, "/_tether/ready")[0] == 200
    assert calls == ["/app"]


def test_a_read_buffer_is_never_larger_than_the_pause_level() -> None:
    assert len(ReadBuffer().data) <= HIGH_WATER
    with pytest.raises(ValueError):
        ReadBuffer(HIGH_WATER + 1)
