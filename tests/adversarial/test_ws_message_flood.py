"""A flood of tiny WebSocket messages at an app that takes none, against ``tether serve``.

Each client sends 7-byte messages as fast as TCP lets it. The server keeps at most
``--ws-max-queue`` of them for the app and stops reading the socket, so the client is held by
TCP's flow control: what the server has read stays within one read (and, on asyncio, its
stream's read-ahead), its memory does not grow with what the clients offer, and another client
is served meanwhile.
"""

from __future__ import annotations

import contextlib
import select
import socket
from pathlib import Path

import pytest

from tests.adversarial._servers import get, masked_frame, tether_serve, websocket_upgrade

pytestmark = pytest.mark.timeout(120)

FLOODERS = 16
#: What each client tries to send: far more than the kernel buffers between it and the server.
OFFER = 32 * 1024 * 1024
#: 10,000 one-byte binary messages.
BURST = masked_frame(0x2, b"x") * 10_000


def _queues(local: int, remote: int) -> tuple[int, int]:
    """The send and receive queues (bytes) of the TCP socket from port ``local`` to ``remote``
    on 127.0.0.1: bytes sent and not acknowledged, bytes received and not read."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if (int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)) == (local, remote):
            tx, rx = fields[4].split(":")
            return int(tx, 16), int(rx, 16)
    raise LookupError(f"no TCP socket {local} -> {remote}")


def _flood(socks: list[socket.socket]) -> dict[socket.socket, int]:
    """Send BURSTs on every socket until the server takes no more from any of them (none
    writable for a second) or one has sent OFFER bytes; the bytes each sent."""
    sent = dict.fromkeys(socks, 0)
    pending = {sock: memoryview(BURST) for sock in socks}
    for sock in socks:
        sock.setblocking(False)
    while max(sent.values()) < OFFER:
        _, writable, _ = select.select([], socks, [], 1.0)
        if not writable:
            break
        for sock in writable:
            with contextlib.suppress(BlockingIOError):
                n = sock.send(pending[sock])
                sent[sock] += n
                pending[sock] = pending[sock][n:] or memoryview(BURST)
    return sent


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_tiny_message_flood_is_held_at_ws_max_queue_by_tcp_back_pressure(
    backend: str, tmp_path: Path
) -> None:
    options = ["--backend", backend, "--ws-max-queue", "4", "--ws-ping-interval", "0"]
    options += ["--timeout-graceful-shutdown", "1"]  # the held apps never return by themselves
    with tether_serve(tmp_path, *options) as server:
        floods = []
        before = server.rss_kb()
        for _ in range(FLOODERS):
            sock = socket.socket()
            # A small send buffer: the client is held sooner, the server's side is the same.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
            sock.settimeout(5)
            sock.connect(("127.0.0.1", server.port))
            assert websocket_upgrade(sock, "/hold") == b""
            floods.append(sock)
        for sock, sent in _flood(floods).items():
            assert sent < OFFER, "the server kept reading a client whose app takes nothing"
            client_port = sock.getsockname()[1]
            unacknowledged, _ = _queues(client_port, server.port)
            _, unread = _queues(server.port, client_port)
            read = sent - unacknowledged - unread
            # One 64 KiB read, and on asyncio the stream's read-ahead (64 KiB past what it
            # reads, in one 256 KiB recv at most): never the megabytes the client offered.
            assert read <= 512 * 1024, (read, sent)
        # Each held connection costs a few hundred KiB (the bytes above, buffers); parsed into
        # the inbox, one read of 7-byte frames would be ~9,000 messages, about 1 MiB more each.
        grown = server.rss_kb() - before
        assert grown < 12 * 1024, f"RSS grew {grown} KiB for {FLOODERS} held floods"
        assert get(server.port) == (200, b"ok")
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as other:
            websocket_upgrade(other, "/echo")
            other.sendall(masked_frame(0x1, b"still here"))
            assert other.recv(64) == b"\x81\x0astill here"
        for sock in floods:
            sock.close()
        assert get(server.port) == (200, b"ok")
        assert "Traceback" not in server.output()
