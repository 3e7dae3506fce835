"""ASGI type aliases used across the server (kept loose: ASGI messages are plain dicts)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

from anyio import BrokenResourceError, ClosedResourceError

#: An ASGI scope or message.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
#: An ASGI 3 application.
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ClientDisconnected(OSError):
    """Raised by ``send`` when the client has gone away (ASGI 2.4: an ``OSError`` subclass)."""


#: What a read or write raises when the peer is gone.
STREAM_GONE = (BrokenResourceError, ClosedResourceError, OSError)
#: Bytes asked of a stream per read.
READ_SIZE = 65536


class Stream(Protocol):
    """The byte stream operations the server uses (anyio ``ByteStream`` or ``FastStream``)."""

    async def receive(self, max_bytes: int = 65536) -> bytes: ...

    async def send(self, item: bytes, /) -> None: ...

    async def send_eof(self) -> None: ...

    async def aclose(self) -> None: ...
