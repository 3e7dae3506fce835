"""ASGI type aliases used across the server (kept loose: ASGI messages are plain dicts)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

from anyio import BrokenResourceError, ClosedResourceError, EndOfStream

#: An ASGI scope or message.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
#: An ASGI 3 application.
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ClientDisconnected(OSError):
    """Raised by ``send`` when the client has gone away (ASGI 2.4: an ``OSError`` subclass)."""


#: What a read or write raises when the peer is gone. ``EndOfStream`` is a read's end (each read
#: catches it first, as EOF), and also what anyio's TLS stream raises from ``send`` once it has
#: read a TCP FIN with no close_notify: its SSL object then writes nothing more.
STREAM_GONE = (BrokenResourceError, ClosedResourceError, EndOfStream, OSError)
#: Bytes asked of a stream per read.
READ_SIZE = 65536


class Stream(Protocol):
    """The byte stream operations the server uses (anyio ``ByteStream`` or ``FastStream``)."""

    async def receive(self, max_bytes: int = 65536) -> bytes: ...

    async def send(self, item: bytes, /) -> None: ...

    async def send_eof(self) -> None: ...

    async def aclose(self) -> None: ...
