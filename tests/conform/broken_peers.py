"""Two more servers broken on purpose, for the websocket and traffic probe groups.

- :class:`LaxWebSocketServer` upgrades any request that says ``Upgrade: websocket``
  (any version, any key or none) and then echoes every frame's payload with the same
  opcode, answers pings and close frames, and checks nothing: no mask, no reserved
  bits, no opcode, no UTF-8, no close code.
- :class:`ReversingServer` parses requests with the core and answers them correctly
  but, when several arrive in one read, in reverse order (each body names its request).
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
from collections.abc import Callable

from tests.conform.broken_servers import Threaded
from tether.errors import ProtocolError
from tether.http1 import NEED_DATA, Data, EndOfMessage, Request, Response, ServerConnection

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class LaxWebSocketServer(Threaded):
    """Upgrades anything and echoes any frame (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(self.serve)

    def serve(self, sock: socket.socket) -> None:
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = sock.recv(65536)
            if not data:
                return
            buf += data
        head, _, buf = buf.partition(b"\r\n\r\n")
        fields = dict(
            (name.strip().lower(), value.strip())
            for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:])
        )
        accept = base64.b64encode(
            hashlib.sha1(fields.get(b"sec-websocket-key", b"") + _GUID).digest()
        )
        sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: %s\r\n\r\n" % accept
        )
        data_frame = self.on_data()
        while True:
            while (frame := _take_frame(buf)) is None:
                data = sock.recv(65536)
                if not data:
                    return
                buf += data
            b0, payload, buf = frame
            opcode = b0 & 0x0F
            if opcode == 9:
                sock.sendall(_server_frame(0x8A, payload))
            elif opcode == 8:
                sock.sendall(_server_frame(0x88, payload))
                return
            elif not data_frame(sock, b0, payload):
                return

    def on_data(self) -> Callable[[socket.socket, int, bytes], bool]:
        """One connection's handler of any other frame (first byte, unmasked payload); False
        ends the connection. Here: echo it with the same FIN, RSV and opcode."""

        def echo(sock: socket.socket, b0: int, payload: bytes) -> bool:
            sock.sendall(_server_frame(b0, payload))
            return True

        return echo


def _take_frame(buf: bytes) -> tuple[int, bytes, bytes] | None:
    """(first byte, unmasked payload, rest) of the first frame in ``buf``, masked or not."""
    if len(buf) < 2:
        return None
    b0, b1 = buf[0], buf[1]
    n, pos = b1 & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, pos = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, pos = struct.unpack("!Q", buf[2:10])[0], 10
    key = b""
    if b1 & 0x80:
        key, pos = buf[pos : pos + 4], pos + 4
    if len(buf) < pos + n:
        return None
    payload = buf[pos : pos + n]
    if key:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return b0, payload, buf[pos + n :]


def _server_frame(b0: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", b0, n) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", b0, 126, n) + payload
    return struct.pack("!BBQ", b0, 127, n) + payload


class ReversingServer(Threaded):
    """Answers the requests of one read in reverse order (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(self.serve)

    def serve(self, sock: socket.socket) -> None:
        conn = ServerConnection()
        while True:
            data = sock.recv(65536)
            conn.receive_data(data)
            done: list[bytes] = []
            try:
                while (event := conn.next_event()) is not NEED_DATA:
                    if isinstance(event, Request):
                        name = b"%s %s" % (event.method, event.target)
                        size = 0
                    elif isinstance(event, Data):
                        size += len(event.data)
                    elif isinstance(event, EndOfMessage):
                        body = b"%s %d\n" % (name, size)
                        out = conn.send(Response(200, [(b"content-length", b"%d" % len(body))]))
                        out += conn.send(Data(body)) + conn.send(EndOfMessage())
                        done.append(out)
                        if not conn.start_next_cycle():
                            break
                    else:  # ConnectionClosed
                        break
            except ProtocolError:
                return
            sock.sendall(b"".join(reversed(done)))
            if not data or not conn.keep_alive:
                return


class OneReadServer(Threaded):
    """Takes each read for a whole request: a request that arrives in pieces is answered 400
    (the mistake of a server that parses per read instead of buffering until the head ends)."""

    def __init__(self) -> None:
        super().__init__(self.serve)

    def serve(self, sock: socket.socket) -> None:
        while True:
            data = sock.recv(65536)
            if not data:
                return
            conn = ServerConnection()
            conn.receive_data(data)
            try:
                request = conn.next_event()
                complete = isinstance(request, Request)
                while complete and not isinstance(event := conn.next_event(), EndOfMessage):
                    complete = event is not NEED_DATA
            except ProtocolError:
                complete = False
            body = b"ok\n" if complete else b"incomplete\n"
            status = b"200 OK" if complete else b"400 Bad Request"
            sock.sendall(b"HTTP/1.1 %s\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body))
