"""The WebSocket inbox's byte bound counts a text message's UTF-8 bytes, not its characters.

Both servers stop reading once the messages an application has not taken reach
``RULES.inbox_high`` bytes. Text messages were counted with ``len(str)``: a message of 4-byte
characters took four times the memory the bound allows (64 messages of 64 KiB, 4 MiB, against
a 1 MiB bound). Over a real socket, an application that takes nothing, messages of emoji:
reading stops within one message of the bound, in bytes; then every message arrives intact.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import pytest

from tests.adversarial._servers import websocket_upgrade
from tests.server_asyncio.conftest import running as asyncio_running
from tests.server_threaded.threaded_helpers import connect, wait_for
from tests.server_threaded.threaded_helpers import running as threaded_running
from tether import websocket as ws
from tether.serving_cycle import RULES
from tether.serving_websocket import Hold, WebSocketSession
from tether_asyncio import _ws_io
from tether_threaded import WebSocket, websocket_app

pytestmark = pytest.mark.timeout(120)

#: 16 Ki four-byte characters: 64 KiB of UTF-8, 16 Ki in len().
TEXT = "\U0001f600" * 16384
SIZE = len(TEXT.encode())
#: Twice what counting characters would hold (RULES.inbox_high characters: 64 messages).
MESSAGES = 2 * RULES.inbox_high // len(TEXT)


def _frames() -> bytes:
    client = ws.Connection(ws.Role.CLIENT, now=0.0, mask_source=os.urandom)
    for i in range(MESSAGES):
        client.send(ws.Text(f"{i:04d}" + TEXT), 0.0)
    return client.bytes_to_send()


def _check_held(session: WebSocketSession) -> None:
    """The inbox, once reading stopped: in bytes, at most one message past the bound."""
    assert session.held is Hold.INBOX
    held = list(session.inbox)
    utf8 = sum(len(event.data.encode()) for event in held)  # type: ignore[union-attr]
    assert session.inbox_size == utf8
    assert RULES.inbox_high <= utf8 < RULES.inbox_high + SIZE + 4, (len(held), utf8)


def _drive(
    start: Callable[[], socket.socket], session: Callable[[], WebSocketSession | None]
) -> tuple[socket.socket, threading.Thread]:
    """Send every message, wait (bounded) until the server stops reading, check what it holds."""
    sock = start()
    data = _frames()
    sender = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
    sender.start()
    assert wait_for(lambda: (s := session()) is not None and s.held is Hold.INBOX, timeout=30)
    found = session()
    assert found is not None
    _check_held(found)
    return sock, sender


def _drive_and_release(
    start: Callable[[], socket.socket],
    session: Callable[[], WebSocketSession | None],
    release: threading.Event,
    done: threading.Event,
    taken: list[str | bytes],
) -> None:
    """``_drive``, then let the app take every message: each arrives whole and in order."""
    try:
        sock, sender = _drive(start, session)
    finally:
        release.set()
    assert done.wait(30)
    sender.join(30)
    assert taken == [f"{i:04d}" + TEXT for i in range(MESSAGES)]
    sock.close()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_tether_serve_counts_utf8_bytes(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    sessions: list[WebSocketSession] = []

    class Recorded(WebSocketSession):
        __slots__ = ()

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            sessions.append(self)

    monkeypatch.setattr(_ws_io, "WebSocketSession", Recorded)
    release, done = threading.Event(), threading.Event()
    taken: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        await anyio.to_thread.run_sync(release.wait)  # takes nothing until released
        while len(taken) < MESSAGES:
            message = await receive()
            taken.append(message["text"])
        done.set()
        await receive()

    with asyncio_running(app, backend, ws_max_queue=10 * MESSAGES, ws_ping_interval=None) as srv:

        def start() -> socket.socket:
            sock = srv.connect()
            assert websocket_upgrade(sock) == b""
            return sock

        _drive_and_release(start, lambda: sessions[0] if sessions else None, release, done, taken)


def test_tether_threaded_counts_utf8_bytes() -> None:
    release, done = threading.Event(), threading.Event()
    taken: list[str | bytes] = []

    def handler(sock: WebSocket) -> None:
        assert release.wait(60)  # takes nothing until released
        while len(taken) < MESSAGES:
            taken.append(sock.receive())
        done.set()

    app = websocket_app(handler, compress=False)
    with threaded_running(app, ws_max_queue=10 * MESSAGES, ws_ping_interval=None) as server:
        loop = server._loop
        assert loop is not None

        def start() -> socket.socket:
            sock = connect(server)
            assert websocket_upgrade(sock) == b""
            return sock

        def session() -> WebSocketSession | None:
            for conn in list(loop.conns):
                with conn.lock:  # the loop holds it while it reads
                    return conn.session
            return None

        _drive_and_release(start, session, release, done, taken)
