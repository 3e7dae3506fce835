"""A WSGI application that echoes every WebSocket message (for Autobahn and the tests)."""

from __future__ import annotations

from tether_threaded import WebSocket, websocket_app


def echo(ws: WebSocket) -> None:
    """Send every message back until the client closes."""
    while True:
        ws.send(ws.receive())


app = websocket_app(echo)
