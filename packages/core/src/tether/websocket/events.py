"""The events a WebSocket connection produces and consumes.

The same classes go both ways: ``Connection.events()`` yields them, and
``Connection.send()`` takes them. Message events carry ``fin``: whole messages
always have ``fin=True``; when a connection streams (``stream=True``) a message
arrives as several events of one type, the last with ``fin=True``, and a caller
sends a message in pieces the same way.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Text:
    """A text message, or a piece of one (``fin=False`` on every piece but the last)."""

    data: str
    fin: bool = True


@dataclass(frozen=True, slots=True)
class Binary:
    """A binary message, or a piece of one (``fin=False`` on every piece but the last)."""

    data: bytes
    fin: bool = True


@dataclass(frozen=True, slots=True)
class Ping:
    """A ping (payload at most 125 bytes). The connection answers received pings itself."""

    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class Pong:
    """A pong (payload at most 125 bytes), solicited or not."""

    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class Close:
    """A close frame: received from the peer, or to send.

    A received close frame without a status has ``code=1005`` (RFC 6455 7.1.5);
    to send one without a status, give ``code=1005`` and an empty reason. The
    connection answers a received close frame itself, echoing its code.
    """

    code: int = 1000
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    """The TCP connection ended before the closing handshake completed (code 1006).

    RFC 6455 7.1.5: "If _The WebSocket Connection is Closed_ and no Close control
    frame was received by the endpoint (such as could occur if the underlying
    transport connection is lost), _The WebSocket Connection Close Code_ is
    considered to be 1006."
    """

    code: int = 1006


#: Anything ``Connection.events()`` yields.
Event = Text | Binary | Ping | Pong | Close | ConnectionLost
#: Anything ``Connection.send()`` accepts.
#: What ``Connection.send`` takes. (Named apart from ``tether.http1.SendEvent``, the HTTP
#: events a server sends, so both can be imported side by side.)
WebSocketSendEvent = Text | Binary | Ping | Pong | Close
#: The old name of :data:`WebSocketSendEvent` (deprecated).
SendEvent = WebSocketSendEvent

__all__ = [
    "Binary",
    "Close",
    "ConnectionLost",
    "Event",
    "Ping",
    "Pong",
    "Text",
    "WebSocketSendEvent",
]
