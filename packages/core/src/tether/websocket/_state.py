"""The closing handshake's states, the one table of their legal moves, and the timers."""

from __future__ import annotations

import enum


class Role(enum.Enum):
    """Which end of the connection we are: it decides masking (RFC 6455 5.1) and TCP close."""

    SERVER = "SERVER"
    CLIENT = "CLIENT"


class WebSocketState(enum.Enum):
    """Where the closing handshake stands (RFC 6455 section 7)."""

    #: Messages flow both ways.
    OPEN = "OPEN"
    #: We sent a close frame and wait for the peer's; we send nothing more.
    CLOSING = "CLOSING"
    #: Both close frames were exchanged, or the connection failed or was lost.
    CLOSED = "CLOSED"


class WebSocketTimer(enum.Enum):
    """Which deadline :meth:`Connection.next_deadline` reports."""

    #: The peer's close frame (or, for a client, the server's TCP close) is overdue.
    CLOSE = "CLOSE"
    #: Time to send a keep-alive ping (``Limits.ws_ping_interval``).
    PING = "PING"
    #: The pong answering our ping is overdue (``Limits.ws_ping_timeout``): fail with 1011.
    PONG = "PONG"


class _Move(enum.Enum):
    SEND_CLOSE = "SEND_CLOSE"
    RECEIVE_CLOSE = "RECEIVE_CLOSE"
    FAIL = "FAIL"
    LOSE = "LOSE"
    TIME_OUT = "TIME_OUT"


#: Every legal state change; anything else is a bug in this module.
_TRANSITIONS: dict[tuple[WebSocketState, _Move], WebSocketState] = {
    (WebSocketState.OPEN, _Move.SEND_CLOSE): WebSocketState.CLOSING,
    (
        WebSocketState.OPEN,
        _Move.RECEIVE_CLOSE,
    ): WebSocketState.CLOSED,  # we answer the close at once
    (WebSocketState.OPEN, _Move.FAIL): WebSocketState.CLOSED,
    (WebSocketState.OPEN, _Move.LOSE): WebSocketState.CLOSED,
    (WebSocketState.CLOSING, _Move.RECEIVE_CLOSE): WebSocketState.CLOSED,
    (WebSocketState.CLOSING, _Move.FAIL): WebSocketState.CLOSED,
    (WebSocketState.CLOSING, _Move.LOSE): WebSocketState.CLOSED,
    (WebSocketState.CLOSING, _Move.TIME_OUT): WebSocketState.CLOSED,
}

_OPEN = WebSocketState.OPEN
_CLOSING = WebSocketState.CLOSING
_CLOSED = WebSocketState.CLOSED
