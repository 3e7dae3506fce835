"""The byte counts under TLS (the ASGI TLS extension is :mod:`tether_server.asgi_tls`'s)."""

from __future__ import annotations

from typing import Any

from anyio.streams.tls import TLSStream


class CountedStream:
    """A TLS stream whose decrypted bytes are counted in a metrics cell (``--metrics-port``),
    as on every server: the HTTP bytes, before encryption."""

    __slots__ = ("_cell", "_stream")

    def __init__(self, stream: TLSStream, cell: Any) -> None:
        self._stream = stream
        self._cell = cell

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """The next decrypted bytes; raises ``EndOfStream`` at EOF."""
        data = await self._stream.receive(max_bytes)
        self._cell.received += len(data)
        return data

    async def send(self, item: bytes) -> None:
        """Encrypt and write ``item``."""
        await self._stream.send(item)
        self._cell.sent += len(item)

    async def send_eof(self) -> None:
        """Half-close (as the TLS stream allows)."""
        await self._stream.send_eof()

    async def aclose(self) -> None:
        """Close the TLS stream and the connection under it."""
        await self._stream.aclose()
