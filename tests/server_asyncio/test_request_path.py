"""The per-request path of ``tether serve`` keeps its behaviour where it was made cheaper.

- :class:`FastStream` writes in two steps (``write()`` hands bytes to the transport without a
  coroutine, ``flush()`` waits): ``write()`` must still ask for a flush when the peer is slow
  and when its write budget is spent, so fairness and back-pressure hold.
- The access line is logged without logging's walk up the stack; its record must still name
  the function and file that log it, as ``logger.info()`` would have.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
import threading
from typing import Any

from tests.server_asyncio.conftest import running
from tether_asyncio._stream import SEND_BUDGET, SEND_COST, FastStream
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
