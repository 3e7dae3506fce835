"""A hostile WebSocket client against both servers, over real sockets to real processes.

Each test stages one thing a client may do (its frames written raw, so nothing is tidied up by
a client library) against ``tether serve`` on asyncio and trio and, where the server has the
same exposure, ``tether-threaded``; it checks what the client sees and what the server logged.
A client's mistakes or departures are no fault of the server's or the application's: they may
be logged as one line, never as a traceback.
"""

from __future__ import annotations

import socket
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.adversarial._servers import (
    ServerProcess,
    tether_serve,
    tether_threaded,
    websocket_upgrade,
)

pytestmark = pytest.mark.timeout(60)

BACKENDS = ["asyncio", "trio"]

#: The ASGI app under attack: any WebSocket echoes each message until the client leaves.
ECHO_APP = """
async def app(scope, receive, send):
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": message.get("text"),
                    "bytes": message.get("bytes")})
"""


def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A client frame (a zero mask, so the payload goes as is), of any length."""
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = bytes((first, 0x80 | n))
    elif n < 65536:
        head = bytes((first, 0xFE)) + struct.pack("!H", n)
    else:
        head = bytes((first, 0xFF)) + struct.pack("!Q", n)
    return head + b"\0\0\0\0" + payload


def read_until_closed(sock: socket.socket, within: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection (fail after ``within`` s)."""
    data = b""
    end = time.monotonic() + within
    while (left := end - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
    raise AssertionError(f"the server did not close the connection within {within} s")


@contextmanager
def asgi_server(tmp_path: Path, backend: str, *options: str) -> Iterator[ServerProcess]:
    with tether_serve(tmp_path, "--backend", backend, *options, app=ECHO_APP) as server:
        yield server


def settled_log(server: ServerProcess, connections: int) -> str:
    """The server's log once it has ended ``connections`` WebSocket sessions (each ends with
    an access line), or after a bounded wait."""
    end = time.monotonic() + 10
    while time.monotonic() < end:
        out = server.output()
        if out.count(" 101 ") >= connections:
            return out
        time.sleep(0.05)  # polling a log file: there is no event to wait on
    return server.output()


class TestClientLeavesWhileTheAppAnswers:
    """A client sends messages and its close frame in one write (or resets the connection):
    the session ends while the app is still answering, so the app's ``send`` raises. The
    client left; neither it nor the app did wrong, and the log has no traceback for it."""

    @pytest.mark.parametrize("backend", BACKENDS)
    def test_messages_then_close_in_one_write_log_no_traceback(
        self, backend: str, tmp_path: Path
    ) -> None:
        # The access log on, so that each session's end is a line to wait for.
        with tether_serve(tmp_path, "--backend", backend, "--access-log", app=ECHO_APP) as server:
            for _ in range(10):
                with server.connect() as sock:
                    websocket_upgrade(sock, "/echo")
                    sock.sendall(frame(0x1, b"hello") * 5 + frame(0x8, b"\x03\xe8"))
                    # The close is answered (after any echoes that were sent before it).
                    assert read_until_closed(sock).endswith(b"\x88\x02\x03\xe8")
            out = settled_log(server, 10)
        assert "Traceback" not in out, out
        assert "exception in ASGI application" not in out, out


def open_idle_websockets(server: ServerProcess, count: int, extensions: str) -> list[socket.socket]:
    """``count`` upgraded WebSockets that then say nothing (all upgraded when this returns)."""
    request = (
        "GET /idle HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"{extensions}\r\n"
    ).encode()
    socks = []
    for _ in range(count):
        sock = server.connect()
        sock.sendall(request)
        socks.append(sock)
    for sock in socks:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk, "closed during the WebSocket handshake"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
    return socks


def kib_per_session(
    server: ServerProcess,
    count: int,
    extensions: str,
    use: Callable[[list[socket.socket]], None] = lambda socks: None,
) -> float:
    """Resident KiB that each of ``count`` upgraded sessions costs the server, once ``use``
    has been applied to them (50 sessions first, for the allocator's first arenas)."""
    warm = open_idle_websockets(server, 50, extensions)
    use(warm)
    before = server.rss_kb()
    socks = open_idle_websockets(server, count, extensions)
    use(socks)
    per_session = (server.rss_kb() - before) / count
    for sock in warm + socks:
        sock.close()
    return per_session


class TestIdleDeflateSessions:
    """A client that negotiates permessage-deflate and then idles. zlib's compressor state is a
    few hundred KiB; made with each connection, it cost ~87 KiB of resident memory per idle
    session (~25 KiB without the extension), so idle connections were several times as cheap
    to hold against the server as they should be. It is now made at the first message."""

    COUNT = 400

    def test_an_idle_deflate_session_costs_about_what_a_plain_one_does(
        self, tmp_path: Path
    ) -> None:
        offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n"
        with asgi_server(tmp_path, "asyncio") as server:
            per_session = kib_per_session(server, self.COUNT, offer)
        # Measured: ~25 KiB per plain idle session, ~31 KiB with deflate, ~87 KiB before.
        assert per_session < 55, f"{per_session:.0f} KiB per idle permessage-deflate session"


class TestUsedDeflateSessions:
    """Clients that negotiate permessage-deflate and send one message each, which the echo app
    sends back compressed: from then on each session holds a compressor. With zlib's defaults
    (a 32 KiB window, ``memLevel`` 8) that cost ~92 KiB more per session than a plain one, so a
    few thousand such clients took hundreds of MB. The servers now offer what websockets serves
    by default (``tether.serving_websocket.SERVER_DEFLATE``: a 4 KiB window, ``memLevel`` 5)."""

    COUNT = 300

    @staticmethod
    def echo_once(socks: list[socket.socket]) -> None:
        """Each socket sends one compressed text message and reads the compressed echo."""
        compressor = zlib.compressobj(6, zlib.DEFLATED, -12)
        payload = compressor.compress(b"hello " * 50) + compressor.flush(zlib.Z_SYNC_FLUSH)
        message = frame(0x1, payload[:-4])
        message = bytes((message[0] | 0x40,)) + message[1:]  # RSV1: a compressed message
        for sock in socks:
            sock.sendall(message)
        for sock in socks:
            head = sock.recv(2)
            assert len(head) == 2 and head[0] & 0x40, head  # a compressed text message
            size = head[1] & 0x7F
            while size:
                size -= len(sock.recv(size))

    def test_a_session_that_compressed_costs_far_less_than_zlib_s_defaults(
        self, tmp_path: Path
    ) -> None:
        offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        with asgi_server(tmp_path, "asyncio") as server:
            per_session = kib_per_session(server, self.COUNT, offer, self.echo_once)
        # Measured: ~27 KiB per plain session; once a message was compressed ~65 KiB, and
        # ~127 KiB with zlib's defaults.
        assert per_session < 90, f"{per_session:.0f} KiB per permessage-deflate session in use"

    def test_the_answer_asks_for_small_windows(self, tmp_path: Path) -> None:
        # A browser's offer (Chrome's and Firefox's), answered as websockets answers it.
        with asgi_server(tmp_path, "asyncio") as server, server.connect() as sock:
            sock.sendall(
                b"GET /x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
            )
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(4096)
        assert (
            b"sec-websocket-extensions: permessage-deflate; server_max_window_bits=12; "
            b"client_max_window_bits=12\r\n" in head.lower()
        ), head


#: A WSGI app that accepts every WebSocket and takes no message (the session ends at shutdown).
WSGI_HOLD_APP = """
import threading

def app(environ, start_response):
    environ["tether.websocket"].accept()
    threading.Event().wait()
"""


def unread_by_server(server_port: int, client_port: int) -> int:
    """Bytes the server's kernel received on the connection from ``client_port`` and the server
    has not read yet (its TCP receive queue)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1].split(":")[1], fields[2].split(":")[1]
        if (int(local, 16), int(remote, 16)) == (server_port, client_port):
            return int(fields[4].split(":")[1], 16)
    raise LookupError(f"no TCP socket {server_port} -> {client_port}")


class TestDeflateBurstAtAnAppThatDoesNotRead:
    """Many small permessage-deflate messages in one write, each inflating to ``--ws-max-size``,
    at an app that takes none. The inbox bound (``inbox_high``, 1 MiB) was checked only before
    reading: one 64 KiB read was inflated whole, to ``--ws-max-queue`` (32) messages, 32 MiB
    per connection at ``--ws-max-size 1MiB`` (320 MB for 10 clients). Parsing now stops at the
    inbox bound; the frames after wait in the core, unparsed, until the app takes messages."""

    CLIENTS = 10
    MAX_SIZE = 1 << 20

    def message(self) -> bytes:
        """One compressed binary message of ``MAX_SIZE`` zero bytes (about 1 KiB on the wire)."""
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        payload = compressor.compress(bytes(self.MAX_SIZE)) + compressor.flush(zlib.Z_SYNC_FLUSH)
        message = frame(0x2, payload[:-4])
        return bytes((message[0] | 0x40,)) + message[1:]  # RSV1: a compressed message

    def attack(self, server: ServerProcess, path: str) -> None:
        message = self.message()
        burst = message * (60_000 // len(message))  # ~60 KiB
        before = server.rss_kb()
        socks = []
        for _ in range(self.CLIENTS):
            sock = server.connect()
            sock.sendall(
                f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n"
                "\r\n".encode()
            )
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(4096)
            assert b"permessage-deflate" in head, head
            sock.sendall(burst)
            socks.append(sock)
        # Wait (bounded) until the server has read at least the first message of every burst:
        # it parses right after a read. Not for an empty kernel queue: a burst that arrives in
        # two segments is read only up to the message that fills the inbox, by design, and the
        # rest stays in the kernel (tests/adversarial/test_bounds_deflate_burst.py).
        end = time.monotonic() + 30
        ports = [sock.getsockname()[1] for sock in socks]
        unread = len(burst) - len(message)
        while any(unread_by_server(server.port, port) > unread for port in ports):
            assert time.monotonic() < end, "the server did not read the bursts"
            time.sleep(0.02)  # polling /proc: there is no event to wait on
        # Then watch its memory for a moment: inflating is done within milliseconds of a read.
        bound = 8 * 1024 * self.CLIENTS  # KiB: the 1 MiB inbox and one message, with slack
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            grown = server.rss_kb() - before
            assert grown < bound, f"RSS grew {grown} KiB for {self.CLIENTS} bursts of 60 KB"
            time.sleep(0.05)  # sampling memory over a bounded window
        for sock in socks:
            sock.close()

    def test_asyncio(self, tmp_path: Path) -> None:
        # HOSTILE_APP: /hold accepts and takes no message.
        options = ["--ws-max-size", str(self.MAX_SIZE), "--timeout-graceful-shutdown", "1"]
        with tether_serve(tmp_path, *options) as server:
            self.attack(server, "/hold")

    def test_threaded(self, tmp_path: Path) -> None:
        options = ["--ws-max-size", str(self.MAX_SIZE), "--timeout-graceful-shutdown", "1"]
        with tether_threaded(tmp_path, *options, app=WSGI_HOLD_APP) as server:
            self.attack(server, "/hold")


UPGRADE_HEAD = (
    "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


class TestUpgradeWithContent:
    """An upgrade request with content. It was accepted, the content read and dropped first:
    where the WebSocket stream begins then depends on who honours the framing (RFC 9110 9.3.1
    names the smuggling risk of content in a GET), and ``tether serve`` drained an endless
    chunked body, before calling the app, for as long as the client sent it. Now 400."""

    @pytest.mark.parametrize("backend", BACKENDS)
    def test_endless_chunked_upgrade_is_refused_before_its_body(
        self, backend: str, tmp_path: Path
    ) -> None:
        with asgi_server(tmp_path, backend) as server, server.connect() as sock:
            sock.sendall(f"{UPGRADE_HEAD}Transfer-Encoding: chunked\r\n\r\n".encode())
            sock.sendall(b"4000\r\n" + b"x" * 0x4000 + b"\r\n")  # and never a last chunk
            answer = read_until_closed(sock)
            assert answer.startswith(b"HTTP/1.1 400 "), answer[:100]
            assert "Traceback" not in server.output()

    def test_threaded_refuses_an_upgrade_with_content_length(self, tmp_path: Path) -> None:
        app = "from tether_threaded import websocket_app\napp = websocket_app(lambda ws: None)\n"
        with tether_threaded(tmp_path, app=app) as server, server.connect() as sock:
            sock.sendall(f"{UPGRADE_HEAD}Content-Length: 5\r\n\r\nhello".encode())
            answer = read_until_closed(sock)
            assert answer.startswith(b"HTTP/1.1 400 "), answer[:100]
            # Content-Length: 0 is no content: the upgrade goes ahead.
        with tether_threaded(tmp_path, app=app) as server, server.connect() as sock:
            sock.sendall(f"{UPGRADE_HEAD}Content-Length: 0\r\n\r\n".encode())
            assert sock.recv(4096).startswith(b"HTTP/1.1 101 ")
