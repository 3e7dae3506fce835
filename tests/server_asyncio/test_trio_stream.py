"""The trio connection stream (tether_asyncio._trio.TrioStream) over real sockets.

anyio's trio stream passes through trio's scheduler on every receive and send, ready or not;
TrioStream goes to the socket first and yields only to wait, after each send, or once per
SEND_BUDGET bytes read. These tests pin down each part (no pass when the request's bytes are
ready, one pass per response written, a pass before a busy client can starve the others)
and that a stream closed by another task ends a blocked send with anyio's error, which the
server treats as the client gone.
"""

from __future__ import annotations

import contextlib
import socket
import threading

import anyio
import pytest
from anyio.abc import SocketAttribute, SocketListener, SocketStream

trio = pytest.importorskip("trio")

from tether_asyncio._stream import SEND_BUDGET  # noqa: E402
from tether_asyncio._trio import TrioStream  # noqa: E402


async def _pair() -> tuple[SocketStream, socket.socket]:
    """A connected anyio TCP stream (the server side) and a plain socket (the client)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    listener = await SocketListener.from_socket(sock)
    client = socket.create_connection(sock.getsockname())
    server = await listener.accept()
    await listener.aclose()
    return server, client


def _wrap(stream: SocketStream) -> TrioStream:
    return TrioStream(stream.extra(SocketAttribute.raw_socket))


def test_ready_bytes_are_taken_without_a_pass_and_a_send_makes_one() -> None:
    """A request already in the kernel is read with no pass through the scheduler; writing the
    response then gives the other tasks a turn (so that connections whose clients answer at
    once are served together, not one at a time in lockstep with each client)."""

    async def main() -> None:
        anyio_stream, client = await _pair()
        stream = _wrap(anyio_stream)
        ran = []
        exchanges = 20
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: _note(ran))
            await _started(ran)
            turns = 0
            for _ in range(exchanges):
                client.sendall(b"GET / HTTP/1.1\r\n\r\n")  # in our socket's queue on return
                ran.clear()
                assert await stream.receive() == b"GET / HTTP/1.1\r\n\r\n"
                assert ran == []  # anyio's stream would have let the other task run by now
                await stream.send(b"HTTP/1.1 204 No Content\r\n\r\n")
                turns += len(ran)
                assert client.recv(100) == b"HTTP/1.1 204 No Content\r\n\r\n"
            # About one turn per response (trio orders each batch at random, so a single
            # pass may or may not run the other task first); anyio's stream gives two.
            assert exchanges // 4 <= turns <= 3 * exchanges // 2, turns
            group.cancel_scope.cancel()
        client.close()
        await stream.aclose()

    anyio.run(main, backend="trio")


def test_a_busy_connection_yields_after_its_budget() -> None:
    async def main() -> None:
        anyio_stream, client = await _pair()
        stream = _wrap(anyio_stream)
        drain = threading.Thread(target=_drain, args=(client,), daemon=True)
        drain.start()
        ran = []
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: _note(ran))
            await _started(ran)
            ran.clear()
            with anyio.fail_after(10):
                for _ in range(4 * SEND_BUDGET // 4096):
                    await stream.send(b"x" * 4096)
            assert ran, "the other task never ran while one connection kept sending"
            group.cancel_scope.cancel()
        await stream.aclose()
        drain.join(10)
        client.close()

    anyio.run(main, backend="trio")


def test_a_send_blocked_on_a_stream_closed_by_another_task_raises_anyios_error() -> None:
    async def main() -> None:
        anyio_stream, client = await _pair()
        stream = _wrap(anyio_stream)
        raised: list[BaseException] = []

        async def flood() -> None:
            try:
                while True:  # the client never reads: the send blocks
                    await stream.send(b"x" * 65536)
            except Exception as exc:
                raised.append(exc)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                group.start_soon(flood)
                await anyio.sleep(0.2)
                await stream.aclose()
        assert len(raised) == 1
        assert isinstance(raised[0], (anyio.ClosedResourceError, anyio.BrokenResourceError))
        client.close()

    anyio.run(main, backend="trio")


async def _started(ran: list[int]) -> None:
    """Return once the ``_note`` task has run (no clock: scheduler passes until it shows)."""
    while not ran:
        await anyio.lowlevel.checkpoint()


async def _note(ran: list[int]) -> None:
    while True:
        ran.append(1)
        await anyio.lowlevel.checkpoint()


def _drain(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while sock.recv(1 << 20):
            pass
