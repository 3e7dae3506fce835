"""How many received messages ``tether-threaded`` keeps for an application that does not take them.

``--ws-max-queue N`` (``tether serve``'s option, uvicorn's meaning): once N messages wait in the
blocking API's inbox, the loop stops reading the socket, so a client's later frames (and the
pings among them) stay unread until the application catches up; reading resumes at a quarter.
Driven over a raw socket, framed by the core's client; every wait is bounded.
"""

from __future__ import annotations

import os
import select
import socket
import threading

import pytest
from threaded_helpers import connect, running, wait_for

from tests.adversarial._servers import websocket_upgrade
from tether import websocket as ws
from tether.serving_websocket import Hold
from tether_threaded import Server, WebSocket, WebSocketClosed, websocket_app
from tether_threaded._cli import build_parser, config_from_args
from tether_threaded._connection import Connection
from tether_threaded._transport import READ

pytestmark = pytest.mark.timeout(60)

MESSAGES = 8


class _Client:
    """The client's side of one WebSocket on a raw socket, its frames made and read by the core."""

    def __init__(self, server: Server) -> None:
        self.sock = connect(server)
        assert websocket_upgrade(self.sock) == b""
        self.ws = ws.Connection(ws.Role.CLIENT, now=0.0, mask_source=os.urandom)

    def frames(self, *events: ws.Text | ws.Binary | ws.Ping | ws.Close) -> bytes:
        for event in events:
            self.ws.send(event, 0.0)
        return self.ws.bytes_to_send()

    def next_event(self) -> ws.Event:
        """The server's next frame as the core reads it (the socket's timeout bounds the wait)."""
        while True:
            for event in self.ws.events():
                return event
            data = self.sock.recv(65536)
            assert data, "the server closed the connection"
            self.ws.receive_data(data, 0.0)


def _connection(server: Server) -> Connection:
    loop = server._loop
    assert loop is not None
    assert wait_for(lambda: len(loop.conns) == 1)
    (conn,) = loop.conns
    return conn


def _inbox(conn: Connection) -> int:
    with conn.lock:
        return 0 if conn.session is None else len(conn.session.inbox)


# Large: more than one read (64 KiB) each, all of them well under the inbox's 1 MiB. Tiny: all
# of them and the ping in one read, so the messages past the bound are already read (and must
# still wait, unparsed, with the ping behind them).
@pytest.mark.parametrize("size", [100_000, 1], ids=["large", "tiny"])
def test_reading_pauses_while_ws_max_queue_messages_wait(size: int) -> None:
    release = threading.Event()
    taken: list[int] = []

    def handler(sock: WebSocket) -> None:
        assert release.wait(10)  # not receiving: messages pile up
        while len(taken) < MESSAGES:
            taken.append(len(sock.receive()))
        sock.send("took them all")
        sock.receive()  # until the client closes

    app = websocket_app(handler, compress=False)
    with running(app, ws_max_queue=2, ws_ping_interval=None) as server:
        client = _Client(server)
        conn = _connection(server)
        # The ping comes after every message: the server answers it only once it read them all.
        data = client.frames(*[ws.Binary(b"m" * size)] * MESSAGES, ws.Ping(b"are you reading?"))
        sender = threading.Thread(target=client.sock.sendall, args=(data,), daemon=True)
        sender.start()
        assert wait_for(lambda: _inbox(conn) >= 2)
        with conn.lock:  # the loop holds it while it reads: what it read is all in the inbox
            assert conn.session is not None
            assert len(conn.session.inbox) == 2
            assert conn.session.held is Hold.INBOX
            assert not conn.want & READ
        # Nothing came back: a pong would already be in our receive queue (loopback).
        assert select.select([client.sock], [], [], 0) == ([], [], [])
        release.set()
        events = [client.next_event(), client.next_event()]
        assert ws.Text("took them all") in events
        assert ws.Pong(b"are you reading?") in events
        assert taken == [size] * MESSAGES
        sender.join(10)
        assert not sender.is_alive()
        client.sock.sendall(client.frames(ws.Close(1000, "")))
        assert client.next_event() == ws.Close(1000, "")
        client.sock.close()


def test_messages_held_at_ws_max_queue_still_reach_the_app_after_the_client_hangs_up() -> None:
    """Tiny messages past the bound wait unparsed; a client gone meanwhile (EOF, no close frame)
    loses none of them: the app takes every one, then WebSocketClosed(1006)."""
    release, done = threading.Event(), threading.Event()
    received: list[str | bytes] = []
    ended: list[int] = []

    def handler(sock: WebSocket) -> None:
        assert release.wait(10)
        try:
            while True:
                received.append(sock.receive())
        except WebSocketClosed as exc:
            ended.append(exc.code)
            done.set()

    with running(websocket_app(handler), ws_max_queue=2, ws_ping_interval=None) as server:
        client = _Client(server)
        conn = _connection(server)
        client.sock.sendall(client.frames(*[ws.Text(str(i)) for i in range(MESSAGES)]))
        client.sock.shutdown(socket.SHUT_WR)
        assert wait_for(lambda: _inbox(conn) >= 2)
        release.set()
        assert done.wait(10)
        assert received == [str(i) for i in range(MESSAGES)]
        assert ended == [1006]
        client.sock.close()


def test_ws_max_queue_option() -> None:
    parser = build_parser()
    assert config_from_args(parser.parse_args(["app:app"])).ws_max_queue == 32  # uvicorn's
    args = parser.parse_args(["app:app", "--ws-max-queue", "4"])
    assert config_from_args(args).ws_max_queue == 4
    with pytest.raises(SystemExit):
        parser.parse_args(["app:app", "--ws-max-queue", "0"])
