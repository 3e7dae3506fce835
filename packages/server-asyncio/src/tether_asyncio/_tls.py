"""The TLS handshake, and the byte counts under TLS (the ASGI TLS extension is
:mod:`tether_server.asgi_tls`'s)."""

from __future__ import annotations

import contextlib
import ssl
from typing import Any

import anyio
from anyio import EndOfStream
from anyio.streams.tls import TLSStream

from tether.serving_cycle import RULES
from tether_server.tls import PLAIN_HTTP_RESPONSE, plain_http


async def handshake(stream: Any, context: ssl.SSLContext) -> TLSStream:
    """The server side of a TLS handshake over ``stream``; raises what fails it.

    ``TLSStream.wrap`` is not used: when OpenSSL fails a handshake it writes the alert that
    says why (certificate required, protocol version, no shared cipher) and anyio drops it
    unsent, so a client without the certificate ``--ssl-cert-reqs 2`` asks for, or one too old
    for ``--ssl-version``, saw only an unexpected EOF. Here the alert goes out first. The
    stream is then made as ``wrap`` makes it (its fields are anyio's, kept behind the test of
    this alert and anyio's major version).
    """
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=True)
    first = True
    while True:
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            if outgoing.pending:
                await stream.send(outgoing.read())
            try:
                data = await stream.receive()
            except EndOfStream:
                incoming.write_eof()
                continue
            if first and plain_http(data):
                await _refuse_plain_http(stream)
                raise ssl.SSLError("plain HTTP sent to the TLS port (answered 400)") from None
            first = False
            incoming.write(data)
        except ssl.SSLError:
            if outgoing.pending:  # the alert
                await stream.send(outgoing.read())
            raise
        else:
            break
    if outgoing.pending:
        await stream.send(outgoing.read())
    return TLSStream(
        transport_stream=stream,
        standard_compatible=False,
        _ssl_object=tls,
        _read_bio=incoming,
        _write_bio=outgoing,
    )


async def _refuse_plain_http(stream: Any) -> None:
    """Answer plain HTTP on the TLS port with a plain 400, then half-close and linger (reading
    and dropping the rest of the request, bounded as after an HTTP error) so that closing with
    unread bytes does not reset the connection before the client reads the answer."""
    with contextlib.suppress(Exception):
        await stream.send(PLAIN_HTTP_RESPONSE)
        await stream.send_eof()
        budget = RULES.linger_bytes
        with anyio.move_on_after(RULES.linger_seconds):
            while budget > 0:
                budget -= len(await stream.receive())


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
