"""tether-threaded's work on a burst of permessage-deflate messages, counted, and why the
deflate-burst audit's wait for "every burst read" could run out.

The audit (tests/adversarial/test_websocket_audit.py, TestDeflateBurstAtAnAppThatDoesNotRead)
sends ~60 KB of compressed messages, each inflating to 1 MiB, to an app that takes none, and
waits until the server's kernel receive queue is empty. Its wait once ran past 10 s on
tether-threaded under the full suite. Counted here: the server's work per burst is constant
(one ``recv`` of the burst, one message inflated, no decompressor made per frame), and linear
once the app takes the messages. But a burst that reaches the server in two segments (a 60 KB
``sendall`` on loopback starts with a 16 KiB send buffer) is read only up to the first message:
that message fills the inbox, so the server stops reading, by design, and the rest stays in
the kernel until the app takes a message. An empty receive queue is not a state the server
must reach; the wait is the flake, not a slow path.
"""

from __future__ import annotations

import socket
import threading
import types
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.adversarial.test_websocket_audit import frame, unread_by_server
from tests.server_threaded.threaded_helpers import running, wait_for
from tether.serving_websocket import Hold
from tether.websocket import deflate
from tether_threaded import WebSocketClosed, _transport
from tether_threaded._connection import Connection
from tether_threaded._transport import READ

pytestmark = pytest.mark.timeout(60)

MAX_SIZE = 1 << 20
UPGRADE = (
    b"GET /hold HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n\r\n"
)


def message() -> bytes:
    """One compressed binary message of MAX_SIZE zero bytes (~1 KB), as the audit sends."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = compressor.compress(bytes(MAX_SIZE)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    data = frame(0x2, payload[:-4])
    return bytes((data[0] | 0x40,)) + data[1:]  # RSV1: a compressed message


class Counts:
    def __init__(self) -> None:
        self.recv = 0
        self.inflate = 0
        self.streams = 0


@contextmanager
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counts]:
    """Count the server's ``recv`` calls, inflate calls and zlib streams made."""
    counts = Counts()
    recv, decompress, make = (
        _transport.Transport.recv,
        deflate.Decompressor.decompress,
        zlib.decompressobj,
    )

    def counted_recv(self: Any) -> bytes | None:
        counts.recv += 1
        return recv(self)

    def counted_decompress(self: Any, data: bytes, fin: bool, budget: int) -> bytes:
        counts.inflate += 1
        return decompress(self, data, fin, budget)

    def counted_make(*args: Any) -> Any:
        counts.streams += 1
        return make(*args)

    with monkeypatch.context() as patch:
        patch.setattr(_transport.Transport, "recv", counted_recv)
        patch.setattr(deflate.Decompressor, "decompress", counted_decompress)
        fake = types.SimpleNamespace(decompressobj=counted_make, error=zlib.error)
        patch.setattr(deflate, "zlib", fake)
        yield counts


@contextmanager
def holding_server(taken: list[int], release: threading.Event) -> Iterator[Any]:
    """tether-threaded with an app that takes nothing until ``release``, then every message."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        sock = environ["tether.websocket"].accept()
        release.wait(30)
        try:
            while True:
                taken.append(len(sock.receive()))
        except WebSocketClosed:
            return []

    with running(app, ws_max_size=MAX_SIZE, ws_ping_interval=None) as server:
        yield server


def upgraded(server: Any) -> socket.socket:
    sock = socket.create_connection(server.address[:2], timeout=10)
    sock.sendall(UPGRADE)
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 101") and b"permessage-deflate" in head.lower(), head
    return sock


def the_connection(server: Any) -> Connection:
    loop = server._loop
    assert wait_for(lambda: len(loop.conns) == 1)
    (conn,) = loop.conns
    return conn  # type: ignore[no-any-return]


def held(conn: Connection) -> bool:
    with conn.lock:
        return conn.session is not None and conn.session.held is Hold.INBOX


@pytest.mark.parametrize("messages", [8, 57])
def test_a_burst_costs_constant_work_then_linear(
    monkeypatch: pytest.MonkeyPatch, messages: int
) -> None:
    burst = message() * messages  # 57: the audit's ~60 KB
    taken: list[int] = []
    release = threading.Event()
    with counted(monkeypatch) as counts, holding_server(taken, release) as server:
        sock = upgraded(server)
        conn = the_connection(server)
        before = (counts.recv, counts.inflate, counts.streams)
        sock.sendall(burst)
        port = sock.getsockname()[1]
        assert wait_for(lambda: held(conn))
        # Whatever the burst's size: one message inflated (it fills the inbox), a decompressor
        # made again once for the next message (client_no_context_takeover), no wakeup per frame.
        assert counts.inflate - before[1] == 1
        assert counts.streams - before[2] <= 1
        reads = counts.recv - before[0]
        assert 1 <= reads <= 1 + len(burst) // 1024, reads  # at most one a segment
        with conn.lock:
            assert not conn.want & READ  # not watching the socket: the rest waits
        left = unread_by_server(server.address[1], port)
        release.set()
        assert wait_for(lambda: len(taken) == messages, timeout=30)
        assert taken == [MAX_SIZE] * messages
        # Then linear: one inflate and one new decompressor a message (RFC 7692 7.1.1.1: no
        # context takeover, each message starts a fresh window), one recv per segment read.
        assert counts.inflate - before[1] == messages
        assert counts.streams - before[2] <= messages
        assert counts.recv - before[0] <= reads + 1 + left // 1024 + 1
        sock.close()


def test_a_burst_in_two_segments_is_read_up_to_the_bound_only() -> None:
    """What the audit's wait met: the first segment holds the first message, which fills the
    inbox; the server stops reading and the second segment stays in the kernel's queue."""
    one = message()
    burst = one * 57
    taken: list[int] = []
    release = threading.Event()
    with holding_server(taken, release) as server:
        sock = upgraded(server)
        conn = the_connection(server)
        first = 2 * len(one)
        sock.sendall(burst[:first])
        assert wait_for(lambda: held(conn))
        sock.sendall(burst[first:])
        port = sock.getsockname()[1]
        assert wait_for(lambda: unread_by_server(server.address[1], port) == len(burst) - first)
        with conn.lock:
            assert conn.session is not None and len(conn.session.inbox) == 1
            assert not conn.want & READ
        release.set()  # the app takes them: the server reads on
        assert wait_for(lambda: len(taken) == 57, timeout=30)
        assert unread_by_server(server.address[1], port) == 0
        sock.close()
