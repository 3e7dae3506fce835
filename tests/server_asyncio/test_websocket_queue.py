"""How many received messages ``tether serve`` keeps for an app that does not take them.

``--ws-max-queue N`` (uvicorn's option): once N messages wait for the app, the server stops
reading the socket, so a client's later frames (and the pings among them) stay unread until
the app catches up. Driven over a raw socket, on asyncio and trio.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

import anyio
import anyio.to_thread
import pytest

from tests.server_asyncio.conftest import client_frame, read_frame, websocket_connect
from tether import websocket as ws
from tether.serving_websocket import Hold, WebSocketSession
from tether_asyncio._cli import build_parser, config_from_args

pytestmark = pytest.mark.timeout(60)

MESSAGES = 8


# Large: more than one read (64 KiB) each, all of them well under the inbox's 1 MiB. Tiny: all
# of them and the ping in one read, so the messages past the bound are already read (and must
# still wait, unparsed, with the ping behind them).
@pytest.mark.parametrize("size", [100_000, 1], ids=["large", "tiny"])
def test_reading_pauses_while_ws_max_queue_messages_wait(serve: Any, size: int) -> None:
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
    sock = websocket_connect(srv)
    # The ping comes after every message: the server answers it only once it read them all.
    data = client_frame(0x2, b"m" * size) * MESSAGES + client_frame(0x9, b"are you reading?")
    sender = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
    sender.start()
    sock.settimeout(1.0)
    with pytest.raises(TimeoutError):
        read_frame(sock)  # nothing: two messages wait, so the ping stays unread
    release.set()
    sock.settimeout(10.0)
    frames = [read_frame(sock), read_frame(sock)]
    assert sorted(frames) == [(0x1, b"took them all"), (0xA, b"are you reading?")]
    assert taken == [size] * MESSAGES
    sender.join(10)
    sock.sendall(client_frame(0x8, (1000).to_bytes(2, "big")))
    assert read_frame(sock) == (0x8, (1000).to_bytes(2, "big"))
    sock.close()


def test_messages_held_at_ws_max_queue_still_reach_the_app_after_the_client_hangs_up(
    serve: Any,
) -> None:
    """Tiny messages past the bound wait unparsed; a client gone meanwhile (EOF, no close frame)
    loses none of them: the app takes every one, then the disconnect."""
    release, done = threading.Event(), threading.Event()
    received: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await anyio.to_thread.run_sync(release.wait)
        while not received or received[-1]["type"] != "websocket.disconnect":
            received.append(await receive())
        done.set()

    srv = serve(app, ws_max_queue=2, ws_ping_interval=None)
    sock = websocket_connect(srv)
    sock.sendall(b"".join(client_frame(0x1, str(i).encode()) for i in range(MESSAGES)))
    sock.shutdown(socket.SHUT_WR)
    release.set()
    assert done.wait(10)
    texts = [m.get("text") for m in received if m["type"] == "websocket.receive"]
    assert texts == [str(i) for i in range(MESSAGES)]
    assert received[-1] == {"type": "websocket.disconnect", "code": 1006, "reason": ""}
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
    # Without max_messages only the byte bound holds reading.
    assert WebSocketSession(ws.Connection(ws.Role.SERVER, now=0.0)).max_messages is None


def test_session_parses_no_frame_past_max_messages() -> None:
    """One read of tiny messages: the inbox takes max_messages, the frames after stay unparsed
    (a ping among them unanswered) until the application takes some."""
    server = ws.Connection(ws.Role.SERVER, now=0.0)
    session = WebSocketSession(server, max_messages=4)
    server.receive_data(client_frame(0x2, b"x") * 6 + client_frame(0x9, b"p"), 0.0)
    assert session.take_events()
    assert len(session.inbox) == 4 and not session.should_read(0)
    assert server.pending_bytes == 0  # the ping is not read yet: no pong
    assert [session.take() for _ in range(4)] == [b"x"] * 4
    assert session.resume(0) and session.take_events()
    assert [session.take(), session.take(), session.take()] == [b"x", b"x", None]
    assert server.bytes_to_send() == b"\x8a\x01p"  # the pong, once the ping was reached


def test_an_app_that_returns_with_a_full_inbox_still_completes_the_close(serve: Any) -> None:
    """Messages the app never took must not hold reading back once it returned: the client's
    reply to the server's close is read at once, not after ``ws_close_timeout`` (10 s)."""
    filled = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await anyio.to_thread.run_sync(filled.wait)  # returns without receiving

    srv = serve(app, ws_ping_interval=None)
    sock = websocket_connect(srv)
    piece = client_frame(0x2, b"x" * (256 * 1024))
    sock.sendall(piece * 6)  # past the inbox's 1 MiB: the server stops reading
    filled.set()
    sock.settimeout(10.0)
    assert read_frame(sock) == (0x8, (1000).to_bytes(2, "big"))
    started = time.monotonic()
    sock.sendall(client_frame(0x8, (1000).to_bytes(2, "big")))
    assert sock.recv(1) == b""  # the server closed TCP once it read the reply
    assert time.monotonic() - started < 3
    sock.close()
