"""A blocking WebSocket client: the upgrade by ``ClientConnection``, then ``tether.websocket``.

The HTTP/1.1 upgrade request is sent and its 101 answer read by
``tether.http1.ClientConnection``; ``tether.websocket.check_server_response``
validates the handshake; the socket (with any bytes that came after the 101)
then belongs to a client-role ``tether.websocket.Connection``. Run it::

    python examples/ws_client.py ws://127.0.0.1:8000/ws hello world
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from tether import websocket as ws
from tether.http1 import (
    NEED_DATA,
    ClientConnection,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
)
from tether.limits import Limits


class WebSocket:
    """One client WebSocket on a blocking socket."""

    def __init__(self, host: str, port: int, path: str = "/", *, timeout: float = 10) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = ws.make_key(os.urandom(16))
        deflate = ws.DeflateOptions()
        http = ClientConnection(Limits(head_timeout=timeout), now=time.monotonic())
        headers = ws.client_request_headers(f"{host}:{port}".encode(), key, deflate=deflate)
        self.sock.sendall(
            http.send(Request(b"GET", path.encode(), headers)) + http.send(EndOfMessage())
        )
        while True:
            event = http.next_event(time.monotonic())
            if event is NEED_DATA:
                http.receive_data(self.sock.recv(65536), time.monotonic())
            elif isinstance(event, InformationalResponse) and event.status_code == 101:
                break
            elif isinstance(event, (InformationalResponse, Response)) and event.status_code != 101:
                if isinstance(event, Response):
                    self.sock.close()
                    raise ws.HandshakeError(f"the server answered {event.status_code}, not 101")
            else:  # pragma: no cover - ConnectionClosed or PAUSED before a response
                self.sock.close()
                raise ws.HandshakeError(f"no upgrade: {event!r}")
        negotiated = ws.check_server_response(101, event.headers, key, deflate=deflate)
        self.conn = ws.Connection(
            ws.Role.CLIENT, deflate=negotiated.deflate, mask_source=os.urandom, now=time.monotonic()
        )
        if http.trailing_data:  # bytes the server sent right after the 101 (b"" would mean EOF)
            self.conn.receive_data(http.trailing_data, time.monotonic())

    def send(self, message: str | bytes) -> None:
        """Send one text or binary message."""
        self.conn.send(ws.Text(message) if isinstance(message, str) else ws.Binary(message))
        self.sock.sendall(self.conn.bytes_to_send())

    def receive(self) -> str | bytes | None:
        """The next message, or ``None`` once the connection is closed."""
        while True:
            for event in self.conn.events():
                if isinstance(event, ws.Text):
                    return event.data
                if isinstance(event, ws.Binary):
                    return event.data
                if isinstance(event, (ws.Close, ws.ConnectionLost)):
                    self._flush()
                    return None
            self._flush()
            if self.conn.should_close_tcp:
                return None
            self.conn.receive_data(self.sock.recv(65536), time.monotonic())

    def close(self, code: int = 1000) -> None:
        """The closing handshake (RFC 6455 7), then the TCP close."""
        if self.conn.state is ws.State.OPEN:
            self.conn.send(ws.Close(code))
            self._flush()
        while not self.conn.should_close_tcp:
            data = self.sock.recv(65536)
            self.conn.receive_data(data, time.monotonic())
            list(self.conn.events())
            self._flush()
            if not data:
                break
        self.sock.close()

    def _flush(self) -> None:
        out = self.conn.bytes_to_send()
        if out:
            self.sock.sendall(out)


def main(argv: Sequence[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    url = urlsplit(argv[0])
    sock = WebSocket(url.hostname or "127.0.0.1", url.port or 80, url.path or "/")
    for message in argv[1:] or ["hello"]:
        sock.send(message)
        print(sock.receive())
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
