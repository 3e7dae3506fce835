"""Record what a browser really sends: a one-page HTTP server on 127.0.0.1 that serves a form
and keeps the raw body and Content-Type of the POST it receives.

Plain blocking sockets and the core's own parser (``tether.http1``), so that the bytes kept are
exactly the bytes the browser wrote.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

from tether.http1 import Data, EndOfMessage, Request, Response, ServerConnection


@dataclass
class Recorded:
    """The last POST: its Content-Type and its body as received."""

    content_type: bytes = b""
    body: bytes = b""
    done: threading.Event = field(default_factory=threading.Event)


class FormServer:
    """Serve ``page`` on GET; record POSTs (answered with a short page)."""

    def __init__(self, page: bytes) -> None:
        self.page = page
        self.recorded = Recorded()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def close(self) -> None:
        self._sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, sock: socket.socket) -> None:
        with sock:
            sock.settimeout(30)
            conn = ServerConnection(now=0.0)
            while True:
                request = self._next(conn, sock)
                if request is None:
                    return
                body = b""
                while True:
                    event = self._next(conn, sock)
                    if event is None:
                        return
                    if type(event) is Data:
                        body += event.data
                    elif type(event) is EndOfMessage:
                        break
                headers = dict(request.headers)
                if request.method == b"POST":
                    self.recorded.content_type = headers.get(b"content-type", b"")
                    self.recorded.body = body
                    payload = b"<!doctype html><title>ok</title><p id=done>received</p>"
                else:
                    payload = self.page if request.target == b"/" else b""
                status = 200 if payload else 404
                out = conn.send(
                    Response(
                        status,
                        [
                            (b"content-type", b"text/html; charset=utf-8"),
                            (b"content-length", b"%d" % len(payload)),
                        ],
                    )
                )
                out += conn.send(Data(payload)) + conn.send(EndOfMessage())
                sock.sendall(out)
                if request.method == b"POST":
                    self.recorded.done.set()
                if not conn.keep_alive:
                    return
                conn.start_next_cycle(0.0)

    @staticmethod
    def _next(conn: ServerConnection, sock: socket.socket) -> Request | Data | EndOfMessage | None:
        while True:
            event = conn.next_event(0.0)
            if type(event) in (Request, Data, EndOfMessage):
                return event  # type: ignore[return-value]
            if type(event).__name__ == "ConnectionClosed":
                return None
            try:
                data = sock.recv(65536)
            except OSError:
                return None
            conn.receive_data(data, 0.0)
            if not data:
                return None
