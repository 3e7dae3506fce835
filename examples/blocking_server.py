"""A small HTTP/1.1 server on blocking sockets, built only on tether.http1 and the stdlib.

One thread per connection. Keep-alive, pipelining, 100-continue, timeouts and
error responses all come from the core; this file only moves bytes and time.
Run: ``python examples/blocking_server.py [port]``, then ``curl -d hi localhost:8000``.
"""

from __future__ import annotations

import socket
import sys
import threading
import time

from tether.errors import ProtocolError
from tether.http1 import (
    NEED_DATA,
    Data,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
    ServerConnection,
    date_header,
)


def handle(sock: socket.socket) -> None:
    """Serve one connection until the core says it is over."""
    conn = ServerConnection(now=time.monotonic())
    received = 0
    try:
        while True:
            event = conn.next_event(now=time.monotonic())
            if event is NEED_DATA:
                deadline = conn.next_deadline()
                timeout = None if deadline is None else deadline[0] - time.monotonic()
                sock.settimeout(None if timeout is None else max(timeout, 0.0))
                try:
                    data = sock.recv(65536)
                except TimeoutError:  # the core decides what expiry means (408, or just close)
                    sock.sendall(conn.handle_timeout(time.monotonic()) or b"")
                    return
                conn.receive_data(data, now=time.monotonic())
            elif isinstance(event, Request):
                received = 0
                method = event.method
                if conn.expects_continue:  # this application always reads the body
                    sock.sendall(conn.send(InformationalResponse(100)))
            elif isinstance(event, Data):
                received += len(event.data)
            elif isinstance(event, EndOfMessage):
                text = b"you sent %d bytes\n" % received
                # A 2xx to CONNECT would open a tunnel: this server offers none.
                head = Response(
                    501 if method == b"CONNECT" else 200,
                    [
                        (b"content-type", b"text/plain"),
                        (b"content-length", b"%d" % len(text)),
                        date_header(time.time()),
                    ],
                )
                sock.sendall(conn.send(head) + conn.send(Data(text)) + conn.send(EndOfMessage()))
                if not conn.start_next_cycle(now=time.monotonic()):
                    return
            else:  # ConnectionClosed
                return
    except ProtocolError as exc:  # the peer's mistake: answer if we still can, then close
        sock.sendall(conn.error_response(exc, [date_header(time.time())]))
    except OSError:
        pass  # the peer went away
    finally:
        sock.close()


def serve(listener: socket.socket) -> None:
    """Accept connections until the listener is closed, one thread each."""
    while True:
        try:
            sock, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=handle, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    listener = socket.create_server(("127.0.0.1", port))
    print(f"listening on http://127.0.0.1:{port}/", flush=True)
    serve(listener)
