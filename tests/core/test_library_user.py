"""The core's API traps of issue 18, each hit as a library user would hit it."""

from __future__ import annotations

import pytest

from tether.errors import LocalProtocolError
from tether.http1 import (
    NEED_DATA,
    PAUSED,
    EndOfMessage,
    Request,
    Response,
    ServerConnection,
    Timer,
)
from tether.limits import Limits


class TestNoClockMeansNoDeadlines:
    """Issue 18 (2): ``ServerConnection()`` then ``loop.time()`` must not expire at once."""

    def test_a_connection_made_without_now_times_from_the_first_now(self) -> None:
        conn = ServerConnection()  # a user who forgot now=
        assert conn.next_deadline() is None
        conn.receive_data(b"GET / HTTP/1.1\r\n", now=6271.0)  # loop.time() reads ~6271
        assert conn.next_event(now=6271.0) is NEED_DATA
        deadline = conn.next_deadline()
        assert deadline is not None and deadline[0] > 6271.0
        assert conn.handle_timeout(6271.5) is None  # not a 408 at once

    def test_an_idle_connection_without_a_clock_waits_for_its_first_now(self) -> None:
        conn = ServerConnection()
        assert conn.handle_timeout(6271.0) is None
        deadline = conn.next_deadline()
        assert deadline is not None
        assert deadline[0] == 6271.0 + Limits().head_timeout

    def test_with_a_clock_the_idle_timer_starts_at_construction(self) -> None:
        conn = ServerConnection(now=100.0)
        assert conn.next_deadline() == (100.0 + Limits().head_timeout, Timer.KEEP_ALIVE)
        assert conn.handle_timeout(100.0 + Limits().head_timeout) == b""


def _answer(conn: ServerConnection) -> None:
    while not isinstance(conn.next_event(), EndOfMessage):
        pass
    conn.send(Response(204))
    conn.send(EndOfMessage())


def test_a_request_event_is_what_the_docstring_says() -> None:
    conn = ServerConnection(now=0.0)
    conn.receive_data(b"GET / HTTP/1.1\r\nHOST: a\r\nX-Mixed-Case: V\r\n\r\n")
    request = conn.next_event()
    assert isinstance(request, Request)
    assert request.headers == [(b"host", b"a"), (b"x-mixed-case", b"V")]
    assert Request.__doc__ is not None and "lowercase" in Request.__doc__


def test_send_refuses_str_header_values_clearly() -> None:
    conn = ServerConnection(now=0.0)
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    conn.next_event()
    with pytest.raises(LocalProtocolError, match="bytes"):
        conn.send(Response(200, [(b"content-type", "text/plain")]))  # type: ignore[list-item]
    with pytest.raises(LocalProtocolError, match="bytes"):
        conn.send(Response(200, [("content-type", b"text/plain")]))  # type: ignore[list-item]
    assert conn.send(Response(204)).startswith(b"HTTP/1.1 204 ")  # still usable


class TestWebSocketConsistency:
    """Issue 18 (6): the WebSocket module's names and answers, as a user meets them."""

    def test_request_like_is_exported(self) -> None:
        from tether import websocket as ws

        assert "RequestLike" in ws.__all__
        assert ws.RequestLike.__name__ == "RequestLike"

    @pytest.mark.parametrize(
        ("headers", "status"),
        [
            ([(b"host", b"a")], 426),
            (
                [
                    (b"host", b"a"),
                    (b"upgrade", b"websocket"),
                    (b"connection", b"Upgrade"),
                    (b"sec-websocket-version", b"13"),
                ],
                400,  # no Sec-WebSocket-Key
            ),
        ],
    )
    def test_a_rejection_says_connection_close(
        self, headers: list[tuple[bytes, bytes]], status: int
    ) -> None:
        from tether import websocket as ws

        result = ws.server_handshake(Request(b"GET", b"/chat", headers))
        assert isinstance(result, ws.Rejected) and result.status_code == status
        connection = [v for n, v in result.headers if n == b"connection"]
        assert len(connection) == 1 and b"close" in connection[0].lower()
        # Sent through the core, the response closes the connection.
        conn = ServerConnection(now=0.0)
        conn.receive_data(b"GET /chat HTTP/1.1\r\nHost: a\r\n\r\n")
        conn.next_event()
        head = conn.send(Response(result.status_code, result.headers))
        assert b"connection: close\r\n" in head
        assert not conn.keep_alive

    def test_a_client_without_mask_source_is_a_local_protocol_error(self) -> None:
        from tether import websocket as ws

        with pytest.raises(LocalProtocolError, match="mask_source"):
            ws.Connection(ws.Role.CLIENT)


def test_the_docs_are_visible_to_help() -> None:
    """Issue 18 (5): what a user reads with help(), not in #: comments."""
    import dataclasses

    from tether.http1 import Signal

    for name in ("expects_continue", "request_count"):
        doc = getattr(ServerConnection, name).__doc__
        assert doc and len(doc) > 30, name
    assert Signal.__doc__ is not None and "start_next_cycle" in Signal.__doc__
    assert Limits.__doc__ is not None
    for field in dataclasses.fields(Limits):
        if field.init:
            assert f"``{field.name}``" in Limits.__doc__, field.name


class TestPushStyle:
    """Issue 18 (4): an asyncio-style server that gets bytes whether or not it asked."""

    def serve_pushed(self, wire: bytes, chunk: int, *, follow_rule: bool) -> int:
        """Push ``wire`` in chunks as data_received would; return the requests answered."""
        conn = ServerConnection(Limits(max_buffered_bytes=16 * 1024), now=0.0)
        pending = [wire[i : i + chunk] for i in range(0, len(wire), chunk)]
        answered = 0
        while pending:
            if follow_rule and not conn.wants_data:
                # transport.pause_reading(): the bytes wait in the kernel, not in the core.
                pass
            else:
                conn.receive_data(pending.pop(0))
            while True:
                event = conn.next_event()
                if event is NEED_DATA:
                    break
                if isinstance(event, EndOfMessage):
                    conn.send(Response(204))
                    conn.send(EndOfMessage())
                    answered += 1
                    # After start_next_cycle, call next_event again at once.
                    assert conn.start_next_cycle()
                    continue
                if event is PAUSED:
                    break
            if follow_rule and not pending:
                break
        # Anything still buffered is served without new bytes arriving.
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                return answered
            if isinstance(event, EndOfMessage):
                conn.send(Response(204))
                conn.send(EndOfMessage())
                answered += 1
                assert conn.start_next_cycle()

    def test_following_wants_data_never_overflows_the_buffer(self) -> None:
        wire = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * 4000  # ~108 KB pipelined
        assert self.serve_pushed(wire, 64 * 1024, follow_rule=True) == 4000

    def test_wants_data_is_false_while_a_response_is_pending(self) -> None:
        conn = ServerConnection(now=0.0)
        assert conn.wants_data
        conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
        assert isinstance(conn.next_event(), Request)
        assert isinstance(conn.next_event(), EndOfMessage)
        assert not conn.wants_data
        assert conn.next_event() is PAUSED
        conn.send(Response(204))
        conn.send(EndOfMessage())
        assert conn.start_next_cycle()
        assert conn.wants_data
        second = conn.next_event()  # no new bytes: the pipelined request is already here
        assert isinstance(second, Request) and second.target == b"/2"


def test_an_application_failure_gets_a_500_without_a_fake_protocol_error() -> None:
    conn = ServerConnection(now=0.0)
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    conn.next_event()
    try:
        raise KeyError("secret internal detail")
    except KeyError as exc:
        out = conn.error_response(exc)
    assert out.startswith(b"HTTP/1.1 500 ")
    assert b"connection: close\r\n" in out
    assert b"secret" not in out
    assert not conn.keep_alive
