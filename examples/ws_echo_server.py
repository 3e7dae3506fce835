"""A small WebSocket echo server on the Tether core and blocking sockets (one thread per client).

It answers every text and binary message with the same message, negotiates
permessage-deflate, and follows RFC 6455 section 7 for closing: it closes TCP
itself once the closing handshake is done or the connection failed. It serves
the Autobahn test suite (``tests/autobahn.py``) and shows how the sans-I/O
pieces fit together.

Run it::

    python examples/ws_echo_server.py --port 9001      # prints "listening on 127.0.0.1:9001"

The upgrade request is parsed by ``tether.http1.ServerConnection``, which also
hands over any bytes the client sent after the request.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from collections.abc import Sequence

from tether import websocket as ws
from tether.http1 import (
    NEED_DATA,
    Data,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
    ServerConnection,
)
from tether.limits import Limits

#: Limits for the echo server: Autobahn's largest messages are 16 MiB.
LIMITS = Limits(ws_max_frame_size=16 * 1024 * 1024, ws_max_message_size=16 * 1024 * 1024)
#: How long to wait for the peer's own close after we shut our side down.
LINGER = 2.0


def _upgrade(sock: socket.socket) -> tuple[ws.Accepted, bytes] | None:
    """Read the upgrade request and answer it; the accepted result and the bytes after it."""
    deflate = ws.DeflateOptions(level=1)  # speed over ratio: Autobahn checks echoes, not sizes
    http = ServerConnection(limits=LIMITS, now=time.monotonic())
    request = None
    while True:
        try:
            event = http.next_event(time.monotonic())
        except ws.ProtocolError as exc:
            sock.sendall(http.error_response(exc))
            return None
        if event is NEED_DATA:
            http.receive_data(sock.recv(65536), time.monotonic())
        elif isinstance(event, Request):
            request = event
        elif isinstance(event, Data):
            pass  # an upgrade request has no body; ignore one anyway
        elif isinstance(event, EndOfMessage):
            break
        else:  # ConnectionClosed: the client left before finishing its request
            return None
    assert request is not None
    result = ws.server_handshake(request, deflate=deflate)
    if isinstance(result, ws.Rejected):
        sock.sendall(
            http.send(Response(result.status_code, result.headers))
            + http.send(Data(result.body))
            + http.send(EndOfMessage())
        )
        return None
    sock.sendall(http.send(InformationalResponse(101, result.headers)))
    return result, http.trailing_data


def _echo(sock: socket.socket, conn: ws.Connection) -> None:
    """Run one WebSocket connection until the core says to close TCP."""
    while True:
        try:
            for event in conn.events():
                if isinstance(event, (ws.Text, ws.Binary)) and conn.state is ws.State.OPEN:
                    conn.send(event)
        except ws.ProtocolError:
            pass  # the close frame with the error's code is queued; should_close_tcp is set
        out = conn.bytes_to_send()
        if out:
            sock.sendall(out)
        if conn.should_close_tcp:
            return
        deadline = conn.next_deadline()
        now = time.monotonic()
        if deadline is not None:
            if deadline[0] <= now:
                conn.handle_timeout(now)
                continue
            sock.settimeout(deadline[0] - now)
        else:
            sock.settimeout(None)
        try:
            data = sock.recv(1 << 20)
        except TimeoutError:
            continue
        conn.receive_data(data, time.monotonic())


def handle(sock: socket.socket) -> None:
    """Serve one client connection: the upgrade, then the echo loop, then the TCP close."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(10.0)
        upgraded = _upgrade(sock)
        if upgraded is not None:
            result, rest = upgraded
            conn = ws.Connection(
                ws.Role.SERVER, deflate=result.deflate, limits=LIMITS, now=time.monotonic()
            )
            if rest:  # b"" would mean EOF
                conn.receive_data(rest, time.monotonic())
            _echo(sock, conn)
        # Half-close and let the peer close its side, so our last frames are not lost
        # to a reset caused by unread input.
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(LINGER)
        end = time.monotonic() + LINGER
        while time.monotonic() < end and sock.recv(65536):
            pass
    except OSError:
        pass
    finally:
        sock.close()


def serve(host: str = "127.0.0.1", port: int = 0) -> tuple[socket.socket, threading.Thread]:
    """Listen on ``host:port`` and serve in a daemon thread; returns the listening socket."""
    listener = socket.create_server((host, port), backlog=128)

    def accept_loop() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # listener closed
            threading.Thread(target=handle, args=(client,), daemon=True).start()

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    return listener, thread


def main(argv: Sequence[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    args = parser.parse_args(argv)
    listener, thread = serve(args.host, args.port)
    host, port = listener.getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    try:
        thread.join()
    except KeyboardInterrupt:
        listener.close()
        sys.exit(0)


if __name__ == "__main__":
    main()
