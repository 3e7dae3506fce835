"""The trio connection stream's ``--timeout-write`` (tether_asyncio._trio.TrioStream), as
FastStream's on asyncio: a write that makes no progress for the timeout fails with WriteTimeout
(counted as a write timeout by --metrics-port); a write to a peer that keeps reading does not."""

from __future__ import annotations

import socket
import threading

import anyio
import pytest

trio = pytest.importorskip("trio")

from tether_asyncio._stream import WriteTimeout  # noqa: E402
from tether_asyncio._trio import TrioStream  # noqa: E402


class _Metrics:
    def __init__(self) -> None:
        self.timeouts: list[str] = []

    def cell(self) -> None:
        return None

    def timeout(self, kind: str) -> None:
        self.timeouts.append(kind)


def _stream(write_timeout: float, metrics: _Metrics) -> tuple[TrioStream, socket.socket]:
    """A TrioStream over the server side of a TCP connection, and the client's socket."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = socket.create_connection(listener.getsockname())
        sock, _ = listener.accept()
    sock.setblocking(False)
    stream = TrioStream(sock, write_timeout, metrics, count_bytes=False)  # type: ignore[arg-type]
    return stream, client


def test_a_write_the_peer_never_takes_times_out_and_is_counted() -> None:
    async def main() -> None:
        metrics = _Metrics()
        stream, client = _stream(0.3, metrics)
        with anyio.fail_after(10), pytest.raises(WriteTimeout):
            while True:  # the peer never reads: the buffers fill, then no progress
                await stream.send(b"x" * 65536)
        assert metrics.timeouts == ["write"]
        await stream.aclose()
        client.close()

    anyio.run(main, backend="trio")


def test_a_peer_that_keeps_reading_is_served() -> None:
    async def main() -> None:
        metrics = _Metrics()
        stream, client = _stream(0.5, metrics)
        total = 8 * 1024 * 1024
        received = 0

        def read() -> None:
            nonlocal received
            while received < total:
                chunk = client.recv(65536)
                if not chunk:
                    return
                received += len(chunk)

        reader = threading.Thread(target=read)
        reader.start()
        with anyio.fail_after(20):
            for _ in range(total // 65536):
                await stream.send(b"x" * 65536)
        await anyio.to_thread.run_sync(reader.join)
        assert received == total and metrics.timeouts == []
        await stream.aclose()
        client.close()

    anyio.run(main, backend="trio")
