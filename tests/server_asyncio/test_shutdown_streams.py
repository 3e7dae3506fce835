"""Streaming responses and graceful shutdown: a server-sent events stream must not hold the
shutdown until its timeout, and a client leaving a stream is not an application error."""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.processes import LogLines, free_port, reaped, spawn, wait_until

pytestmark = pytest.mark.timeout(90)


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError(f"closed before {marker!r}: {data!r}")
        data += chunk
    return data


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sigterm_ends_sse_stream_at_once(tmp_path: Path, backend: str) -> None:
    """The demo's /clock (an SSE stream that waits for ``http.disconnect``) made Ctrl+C wait for
    the whole graceful timeout; shutdown now tells it the client is going."""
    port = free_port()
    proc = spawn(
        "tether_asyncio",
        tmp_path,
        "serve",
        *("--port", str(port), "--backend", backend),
        *("--timeout-graceful-shutdown", "30"),
    )
    with reaped(proc):
        log = LogLines(proc)
        log.wait_for("running on")
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(b"GET /clock HTTP/1.1\r\nHost: x\r\n\r\n")
            _read_until(sock, b"event: tick")
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            status = proc.wait(20)
            elapsed = time.monotonic() - started
        assert status == 0
        assert elapsed < 10, f"shutdown took {elapsed:.1f} s"
        log.wait_for("a second signal forces the exit")
        text = log.text
        assert "ERROR" not in text, text
        assert "returned before completing" not in text, text
        assert "graceful shutdown timed out" not in text, text


def test_client_leaving_a_starlette_stream_is_not_an_error(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Starlette (ASGI 2.4) turns our ``ClientDisconnected`` into its own ``ClientDisconnect``
    and raises it out of the app: the client left, the app did nothing wrong."""
    import anyio
    from starlette.applications import Starlette
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    ended = threading.Event()

    async def events() -> Any:
        try:
            while True:
                yield b"data: tick\n\n"
                await anyio.sleep(0.05)
        finally:
            ended.set()

    async def stream(request: Any) -> StreamingResponse:
        return StreamingResponse(events(), media_type="text/event-stream")

    srv = serve(Starlette(routes=[Route("/events", stream)]))
    with caplog.at_level(logging.DEBUG, logger="tether.error"):
        with srv.connect(timeout=10) as sock:
            sock.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
            _read_until(sock, b"data: tick")
        assert ended.wait(10)
        # The server finished with the connection (logged at debug) before we look.
        finished = "client disconnected during the response"
        assert wait_until(lambda: finished in caplog.text, 10), caplog.text
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


def test_in_flight_request_listening_for_disconnect_finishes(backend: str) -> None:
    """Django's shape: the view runs while a task listens for ``http.disconnect`` and cancels
    the view on it. A shutdown must let that request finish, not tell it the client left."""
    import anyio
    import httpx

    from tests.server_asyncio.conftest import running

    told: list[str] = []
    sent_all: list[bool] = []
    in_app = threading.Event()
    holder: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await receive()  # the (empty) body

        async def listen(group: anyio.abc.TaskGroup) -> None:
            # Once the whole response is sent, http.disconnect is the spec's answer (and on
            # trio the listener can run inside the last send): only an earlier one is wrong.
            if (await receive())["type"] == "http.disconnect" and not sent_all:
                told.append("disconnect")
                group.cancel_scope.cancel()

        async with anyio.create_task_group() as group:
            group.start_soon(listen, group)
            in_app.set()
            state = holder[0].server.state
            while not state.shutting_down:
                await anyio.sleep(0.01)
            # The shutdown has told every connection what it will; let that run.
            await anyio.wait_all_tasks_blocked()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"8")],
                }
            )
            sent_all.append(True)  # the body's send can yield to the listener
            await send({"type": "http.response.body", "body": b"finished"})
            group.cancel_scope.cancel()

    responses: list[httpx.Response] = []
    with running(app, backend, timeout_graceful_shutdown=30) as srv:
        holder.append(srv)

        def request() -> None:
            responses.append(httpx.get(srv.url + "/", timeout=20))

        client = threading.Thread(target=request)
        client.start()
        assert in_app.wait(10)
        srv.server.request_exit()
        client.join(20)
    assert told == []
    assert responses[0].status_code == 200
    assert responses[0].text == "finished"
