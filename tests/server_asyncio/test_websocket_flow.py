"""Messages through ``tether serve``'s WebSocket reader and writer (asyncio and trio).

Frames the app queues in one event-loop iteration leave in one write, and one task writes
after the ``101``: these check what that must keep: order, whole frames when several tasks
send at once (no lock any more), pings answered among a burst of messages read at once.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from websockets.sync.client import connect

from tests.server_asyncio.apps import echo
from tests.server_asyncio.conftest import client_frame, read_frame, websocket_connect

pytestmark = pytest.mark.timeout(60)


def test_concurrent_senders_never_interleave_frames(serve: Any) -> None:
    """Two tasks send large messages at once, each past the output's high-water mark (so
    both wait for the writer): every frame arrives whole, each task's in its order."""
    count, size = 40, 100_000

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})

        async def sender(tag: bytes) -> None:
            for i in range(count):
                body = tag + i.to_bytes(4, "big")
                await send({"type": "websocket.send", "bytes": body * (size // len(body))})

        async with anyio.create_task_group() as group:
            group.start_soon(sender, b"a")
            group.start_soon(sender, b"b")
        await receive()  # the client's close

    srv = serve(app, ws_per_message_deflate=False)
    seen: dict[bytes, list[int]] = {b"a": [], b"b": []}
    with connect(srv.ws_url + "/", max_size=None) as ws:
        for _ in range(2 * count):
            message = ws.recv()
            assert isinstance(message, bytes) and len(message) == size - size % 5
            assert message == message[:5] * (len(message) // 5)  # one message, not a mix
            seen[message[:1]].append(int.from_bytes(message[1:5], "big"))
    assert seen == {b"a": list(range(count)), b"b": list(range(count))}


def test_burst_read_at_once_is_echoed_in_order_and_pings_answered(serve: Any) -> None:
    srv = serve(echo, ws_per_message_deflate=False, ws_ping_interval=None)
    sock = websocket_connect(srv)
    texts = [f"message {i}".encode() for i in range(300)]
    burst = b"".join(client_frame(0x1, t) for t in texts[:150])
    burst += client_frame(0x9, b"ping in the middle")
    burst += b"".join(client_frame(0x1, t) for t in texts[150:])
    sock.sendall(burst)  # one write: the server reads it in one or a few chunks
    echoed: list[bytes] = []
    pongs: list[bytes] = []
    while len(echoed) < len(texts) or not pongs:
        opcode, payload = read_frame(sock)
        (echoed if opcode == 0x1 else pongs).append(payload)
        assert opcode in (0x1, 0xA)
    assert echoed == texts
    assert pongs == [b"ping in the middle"]
    sock.sendall(client_frame(0x8, (1000).to_bytes(2, "big")))
    assert read_frame(sock) == (0x8, (1000).to_bytes(2, "big"))
    assert sock.recv(1) == b""  # the server closes TCP after the closing handshake
    sock.close()
