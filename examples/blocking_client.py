"""A blocking HTTP/1.1 client on the Tether core: keep-alive, pipelining, chunked uploads.

``tether.http1.ClientConnection`` decides everything protocol-shaped (framing of
both directions, keep-alive, which response belongs to which request, limits and
deadlines); this file only moves bytes between it and a socket. Run it::

    python examples/blocking_client.py http://127.0.0.1:8000/ [more URLs on the same host]

It prints each response's status line and body size, reusing one connection (and
opening a new one when the server closes it).
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from tether.errors import ProtocolError
from tether.http1 import (
    NEED_DATA,
    PAUSED,
    ClientConnection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
)
from tether.limits import Limits


@dataclass
class Result:
    """One whole response."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    trailers: list[tuple[bytes, bytes]]


class Client:
    """One connection to ``host:port``, reopened when the server ends it."""

    def __init__(
        self, host: str, port: int, *, limits: Limits | None = None, timeout: float = 30
    ) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.limits = limits or Limits(head_timeout=timeout, body_timeout=timeout)
        self.sock: socket.socket | None = None
        self.conn = ClientConnection(self.limits)
        #: Connections opened so far (keep-alive keeps this at one).
        self.connections = 0

    def _connect(self) -> socket.socket:
        if self.sock is None or not self.conn.keep_alive:
            self.close()
            self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            self.conn = ClientConnection(self.limits, now=time.monotonic())
            self.connections += 1
        return self.sock

    def close(self) -> None:
        """Close the socket (if any)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def request(
        self,
        method: str,
        target: str,
        headers: Sequence[tuple[bytes, bytes]] = (),
        body: bytes | Iterable[bytes] = b"",
    ) -> Result:
        """Send one request and read its whole response."""
        return self.pipeline([(method, target, headers, body)])[0]

    def pipeline(
        self,
        requests: Sequence[tuple[str, str, Sequence[tuple[bytes, bytes]], bytes | Iterable[bytes]]],
    ) -> list[Result]:
        """Send every request at once on one connection, then read the responses in order.

        A ``bytes`` body goes with Content-Length; any other iterable is sent chunked.
        """
        sock = self._connect()
        conn = self.conn
        out = []
        for method, target, headers, body in requests:
            fields = [(b"host", f"{self.host}:{self.port}".encode()), *headers]
            if isinstance(body, bytes):
                if body or method in ("POST", "PUT", "PATCH"):
                    fields.append((b"content-length", b"%d" % len(body)))
                out.append(conn.send(Request(method.encode(), target.encode(), fields)))
                out.append(conn.send(Data(body)))
            else:
                fields.append((b"transfer-encoding", b"chunked"))
                out.append(conn.send(Request(method.encode(), target.encode(), fields)))
                out.extend(conn.send(Data(piece)) for piece in body)
            out.append(conn.send(EndOfMessage()))
        sock.sendall(b"".join(out))
        return [self._read() for _ in requests]

    def _read(self) -> Result:
        conn, sock = self.conn, self.sock
        assert sock is not None
        response: Response | None = None
        body: list[bytes] = []
        while True:
            event = conn.next_event(time.monotonic())
            if event is NEED_DATA:
                deadline = conn.next_deadline()
                wait = (
                    self.timeout if deadline is None else max(0.0, deadline[0] - time.monotonic())
                )
                sock.settimeout(wait)
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    conn.handle_timeout(time.monotonic())  # raises ResponseTimeout when due
                    raise
                conn.receive_data(data, time.monotonic())
            elif isinstance(event, InformationalResponse):
                continue  # 100 Continue, 103 Early Hints
            elif isinstance(event, Response):
                response = event
            elif isinstance(event, Data):
                body.append(event.data)
            elif isinstance(event, EndOfMessage):
                assert response is not None
                if not conn.keep_alive:
                    self.close()
                return Result(
                    response.status_code,
                    list(response.headers),
                    b"".join(body),
                    list(event.trailers),
                )
            elif isinstance(event, ConnectionClosed) or event is PAUSED:
                raise ConnectionError("the connection ended without a response")


def main(argv: Sequence[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    first = urlsplit(argv[0])
    client = Client(first.hostname or "127.0.0.1", first.port or 80)
    try:
        for url in argv:
            parts = urlsplit(url)
            result = client.request(
                "GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            )
            print(f"{url}: {result.status}, {len(result.body)} bytes")
    except (ProtocolError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
