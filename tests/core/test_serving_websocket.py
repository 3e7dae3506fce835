"""tether.serving_websocket: a WebSocket session's inbox, reading rules and closing handshake,
driven by a client connection over an in-memory link."""

from __future__ import annotations

import os

from tether import websocket as ws
from tether.serving_cycle import RULES
from tether.serving_websocket import Hold, WebSocketSession


def pair() -> tuple[WebSocketSession, ws.Connection]:
    client = ws.Connection(ws.Role.CLIENT, now=0.0, mask_source=os.urandom)
    return WebSocketSession(ws.Connection(ws.Role.SERVER, now=0.0)), client


def deliver(session: WebSocketSession, client: ws.Connection, *events: ws.SendEvent) -> bool:
    for event in events:
        client.send(event, 0.0)
    session.ws.receive_data(client.bytes_to_send(), 0.0)
    return session.take_events()


class TestInbox:
    def test_messages_in_order_then_the_ending_stays(self) -> None:
        session, client = pair()
        assert deliver(session, client, ws.Text("a"), ws.Binary(b"bc"))
        assert session.inbox_size == 3
        assert deliver(session, client, ws.Close(1000, "bye"))
        assert session.take() == "a"
        assert session.take() == b"bc"
        ending = session.take()
        assert isinstance(ending, ws.Close)
        assert ending.code == 1000
        assert session.take() is ending
        assert session.code == 1000
        assert session.inbox_size == 0

    def test_empty_inbox_takes_none(self) -> None:
        session, _ = pair()
        assert session.take() is None

    def test_pings_are_answered_not_queued(self) -> None:
        session, client = pair()
        assert not deliver(session, client, ws.Ping(b"x"))
        assert session.ws.bytes_to_send()  # the pong
        assert session.take() is None

    def test_a_protocol_error_ends_the_session_with_its_code(self) -> None:
        session, _ = pair()
        session.ws.receive_data(b"\x81\x05hello", 0.0)  # unmasked from a client: 1002
        assert session.take_events()
        ending = session.take()
        assert isinstance(ending, ws.Close)
        assert ending.code == 1002
        assert session.code == 1002


def _full_inbox() -> tuple[WebSocketSession, ws.Connection, bytes]:
    """A session whose inbox is full (reading held), its client, and the piece it was fed."""
    session, client = pair()
    piece = b"x" * (RULES.inbox_high // 4)
    while session.should_read(0):
        deliver(session, client, ws.Binary(piece))
    assert session.held is Hold.INBOX
    return session, client, piece


class TestReadingRules:
    def test_a_full_inbox_holds_reading_until_the_app_catches_up(self) -> None:
        session, _, _ = _full_inbox()
        assert not session.resume(0)
        while session.inbox_size >= RULES.inbox_low:
            assert not session.resume(0)
            session.take()
        assert session.resume(0)
        assert session.held is None

    def test_after_the_app_returned_messages_are_dropped_and_reading_resumes(self) -> None:
        session, client, piece = _full_inbox()
        session.app_returned()
        assert session.resume(0)
        assert not deliver(session, client, ws.Binary(piece))  # dropped: nobody takes it
        assert session.inbox_size == 0
        assert session.should_read(0)
        # The peer's close still counts for the access line.
        deliver(session, client, ws.Close(1000, ""))
        assert session.code == 1000

    def test_backed_up_output_holds_reading_until_it_drains(self) -> None:
        session, _ = pair()
        assert session.should_read(RULES.write_high)
        assert not session.should_read(RULES.write_high + 1)
        assert session.held is Hold.OUTPUT
        assert not session.resume(RULES.write_low + 1)
        assert session.resume(RULES.write_low)
        assert session.should_read(0)


class TestClosing:
    def test_our_close_once_with_its_code_kept(self) -> None:
        session, client = pair()
        assert session.close(4000, "done", 0.0)
        assert not session.close(1000, "", 0.0)
        assert session.code == 4000
        client.receive_data(session.ws.bytes_to_send(), 0.0)
        closes = [e for e in client.events() if isinstance(e, ws.Close)]
        assert [(c.code, c.reason) for c in closes] == [(4000, "done")]

    def test_going_away_is_1001(self) -> None:
        session, _ = pair()
        assert session.going_away(0.0)
        assert session.code == RULES.going_away_code == 1001

    def test_the_peers_close_code_comes_first(self) -> None:
        session, client = pair()
        deliver(session, client, ws.Close(4001, ""))
        assert not session.going_away(0.0)  # the handshake has begun: nothing to start
        assert session.ending_code == 4001

    def test_lost_without_a_close_is_1006(self) -> None:
        session, _ = pair()
        assert session.ending_code == 1006
