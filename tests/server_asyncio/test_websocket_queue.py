"""How many received messages ``tether serve`` keeps for an app that does not take them.

``--ws-max-queue N`` (uvicorn's option): once N messages wait for the app, the server stops
reading the socket, so a client's later frames (and the pings among them) stay unread until
the app catches up. Driven over a raw socket, on asyncio and trio.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

import anyio
import anyio.to_thread
import pytest

from tether import websocket as ws
from tether.serving_websocket import Hold, WebSocketSession
from tether_asyncio._cli import build_parser, config_from_args

pytestmark = pytest.mark.timeout(60)

MESSAGES = 8
SIZE = 100_000  # more than one read (64 KiB) each; all of them well under the inbox's 1 MiB


def _frame(opcode: int, payload: bytes) -> bytes:
    """A client frame masked with a zero key (the payload goes out as is)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


def _upgrade(srv: Any) -> socket.socket:
    sock = srv.connect()
    sock.sendall(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101")
    return sock


def _read_frame(sock: socket.socket) -> tuple[int, bytes]:
    def exactly(n: int) -> bytes:
        out = b""
        while len(out) < n:
            piece = sock.recv(n - len(out))
            assert piece, "connection closed"
            out += piece
        return out

    b0, b1 = exactly(2)
    length = b1 & 0x7F
    if length == 126:
        length = int.from_bytes(exactly(2), "big")
    elif length == 127:
        length = int.from_bytes(exactly(8), "big")
    return b0 & 0x0F, exactly(length)


def test_reading_pauses_while_ws_max_queue_messages_wait(serve: Any) -> None:
    release = threading.Event()
    taken: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await anyio.to_thread.run_sync(release.wait)  # not receiving: messages pile up
        while len(taken) < MESSAGES:
            message = await receive()
            assert message["type"] == "websocket.receive", message
            taken.append(len(message["bytes"]))
        await send({"type": "websocket.send", "text": "took them all"})
        assert (await receive())["type"] == "websocket.disconnect"

    srv = serve(app, ws_max_queue=2, ws_ping_interval=None)
    sock = _upgrade(srv)
    # The ping comes after every message: the server answers it only once it read them all.
    data = _frame(0x2, b"m" * SIZE) * MESSAGES + _frame(0x9, b"are you reading?")
    sender = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
    sender.start()
    sock.settimeout(1.0)
    with pytest.raises(TimeoutError):
        _read_frame(sock)  # nothing: two messages wait, so the ping stays unread
    release.set()
    sock.settimeout(10.0)
    frames = [_read_frame(sock), _read_frame(sock)]
    assert sorted(frames) == [(0x1, b"took them all"), (0xA, b"are you reading?")]
    assert taken == [SIZE] * MESSAGES
    sender.join(10)
    sock.sendall(_frame(0x8, (1000).to_bytes(2, "big")))
    assert _read_frame(sock) == (0x8, (1000).to_bytes(2, "big"))
    sock.close()


def test_ws_max_queue_option() -> None:
    parser = build_parser()
    assert config_from_args(parser.parse_args(["serve"])).ws_max_queue == 32  # uvicorn's default
    args = parser.parse_args(["serve", "--ws-max-queue", "4"])
    assert config_from_args(args).ws_max_queue == 4
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--ws-max-queue", "0"])


def test_session_rules_hold_at_max_messages_and_resume_at_a_quarter() -> None:
    """The rule itself (tether.serving_websocket), fed by a client over an in-memory link."""
    server = ws.Connection(ws.Role.SERVER, now=0.0)
    client = ws.Connection(ws.Role.CLIENT, now=0.0, mask_source=os.urandom)
    session = WebSocketSession(server, max_messages=8)
    for i in range(8):
        assert session.should_read(0)
        client.send(ws.Text(str(i)), 0.0)
        server.receive_data(client.bytes_to_send(), 0.0)
        assert session.take_events()
    assert not session.should_read(0)
    assert session.held is Hold.INBOX
    taken = []
    while not session.resume(0):
        taken.append(session.take())
    assert taken == ["0", "1", "2", "3", "4", "5"]  # two left: a quarter of eight
    assert session.should_read(0)
    # Without max_messages only the byte bound holds reading (tether-threaded's rule).
    assert WebSocketSession(ws.Connection(ws.Role.SERVER, now=0.0)).max_messages is None
