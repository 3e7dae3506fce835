"""ASGI type aliases used across the server (kept loose: ASGI messages are plain dicts)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

#: An ASGI scope or message.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
#: An ASGI 3 application.
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ClientDisconnected(OSError):
    """Raised by ``send`` when the client has gone away (ASGI 2.4: an ``OSError`` subclass)."""
