"""The asyncio connection stream (tether_asyncio._stream.FastStream) over real sockets.

It is an ``asyncio.Protocol`` built on public asyncio APIs only; these tests pin down that the
server actually serves asyncio connections through it (plain, TLS, uvloop), and the behaviour
that anyio's stream guaranteed and ours must keep: one reader at a time, yielding to the event
loop while writing to a fast peer, and a write timeout that watches progress.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.streams.tls import TLSStream

from tests.adversarial._servers import make_certificate
from tests.server_asyncio.conftest import read_response, running
from tether_asyncio._stream import SEND_BUDGET, FastStream, WriteTimeout


async def _hello(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_asyncio_connections_are_served_by_the_fast_stream(loop: str) -> None:
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    with running(_hello, "asyncio", loop=loop) as server, server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[0] == 200
        state = server.server.state
        assert state is not None
        # The connection is idle, kept alive, and still registered.
        streams = [connection.stream for connection in state.connections]
        assert streams
        assert all(type(stream) is FastStream for stream in streams), streams


def _with_pair(
    body: Callable[[FastStream, socket.socket], Awaitable[None]], write_timeout: float | None = None
) -> None:
    """Run ``body(stream, peer)`` on asyncio: ``stream`` a FastStream on one end of a
    connected TCP pair, ``peer`` the other end (a blocking socket)."""

    async def main() -> None:
        listener = socket.create_server(("127.0.0.1", 0))
        peer = socket.create_connection(listener.getsockname())
        ours, _ = listener.accept()
        listener.close()
        loop = asyncio.get_running_loop()
        _, stream = await loop.connect_accepted_socket(lambda: FastStream(write_timeout), ours)
        try:
            await body(stream, peer)
        finally:
            await stream.aclose()
            peer.close()

    anyio.run(main, backend="asyncio")


def test_receive_refuses_a_second_concurrent_reader() -> None:
    async def body(stream: FastStream, peer: socket.socket) -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(stream.receive)
            await anyio.wait_all_tasks_blocked()
            with pytest.raises(anyio.BusyResourceError):
                await stream.receive()
            peer.sendall(b"x")

    _with_pair(body)


def test_send_to_a_fast_peer_yields_to_the_event_loop() -> None:
    # Every write below goes straight into the kernel (100 KiB fit in the socket buffers), so
    # only the send budget makes send() yield; without it the ticker would never run.
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.sleep(0)

    async def body(stream: FastStream, peer: socket.socket) -> None:
        nonlocal ticks
        async with anyio.create_task_group() as group:
            group.start_soon(ticker)  # it runs only when this task yields
            for _ in range(200):
                await stream.send(b"x" * 512)
            group.cancel_scope.cancel()
        assert SEND_BUDGET < 200 * (512 + 4096)
        assert ticks >= 1

    _with_pair(body)


def test_send_to_a_fast_peer_can_be_cancelled() -> None:
    async def body(stream: FastStream, peer: socket.socket) -> None:
        sent = 0
        with anyio.CancelScope() as scope:
            scope.cancel()
            for _ in range(200):
                await stream.send(b"x" * 512)
                sent += 1
        assert scope.cancelled_caught
        assert sent < 200

    _with_pair(body)


def test_write_that_makes_no_progress_times_out() -> None:
    async def body(stream: FastStream, peer: socket.socket) -> None:
        with anyio.fail_after(10), pytest.raises(WriteTimeout):
            while True:  # the peer never reads: the buffers fill, then no progress
                await stream.send(b"x" * 65536)

    _with_pair(body, write_timeout=0.3)


def test_tls_connections_run_over_the_fast_stream(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = make_certificate(tmp_path)
    options = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    with running(_hello, "asyncio", **options) as server, httpx.Client(verify=False) as client:
        response = client.get(f"https://{server.host}:{server.port}/")
        assert response.status_code == 200
        state = server.server.state
        assert state is not None
        streams = [connection.stream for connection in state.connections]
        assert streams
        for stream in streams:
            assert isinstance(stream, TLSStream)
            transport: Any = stream.transport_stream
            assert type(transport) is FastStream
