"""ClientConnection: what it sends, when it refuses, keep-alive, pipelining, deadlines."""

from __future__ import annotations

import inspect

import pytest

from tether.errors import LocalProtocolError
from tether.http1 import (
    NEED_DATA,
    PAUSED,
    ClientConnection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    InvalidResponse,
    Request,
    Response,
    ResponseTimeout,
    ServerConnection,
    State,
    Timer,
)
from tether.limits import Limits

HOST = [(b"host", b"example.com")]


def get(
    conn: ClientConnection, method: bytes = b"GET", headers: list[tuple[bytes, bytes]] | None = None
) -> bytes:
    return conn.send(Request(method, b"/", HOST + (headers or []))) + conn.send(EndOfMessage())


class TestSending:
    def test_request_bytes(self) -> None:
        conn = ClientConnection()
        wire = conn.send(Request(b"POST", b"/up?x=1", [*HOST, (b"Content-Length", b"3")]))
        wire += conn.send(Data(b"abc")) + conn.send(EndOfMessage())
        assert wire == b"POST /up?x=1 HTTP/1.1\r\nhost: example.com\r\nContent-Length: 3\r\n\r\nabc"

    def test_chunked_request_with_trailers(self) -> None:
        conn = ClientConnection()
        wire = conn.send(Request(b"PUT", b"/", [*HOST, (b"transfer-encoding", b"chunked")]))
        wire += (
            conn.send(Data(b"hello"))
            + conn.send(Data(b""))
            + conn.send(EndOfMessage([(b"x-sum", b"1")]))
        )
        assert wire.endswith(b"\r\n\r\n5\r\nhello\r\n0\r\nx-sum: 1\r\n\r\n")

    @pytest.mark.parametrize(
        "request_",
        [
            Request(b"GET", b"/", []),  # HTTP/1.1 without Host
            Request(b"GET", b"/", HOST * 2),
            Request(b"G T", b"/", HOST),
            Request(b"GET", b"/a b", HOST),
            Request(b"GET", b"nope", HOST),
            Request(b"CONNECT", b"/", HOST),
            Request(b"GET", b"/", [*HOST, (b"x", b"a\r\nInjected: 1")]),
            Request(b"GET", b"/", [*HOST, (b"bad name", b"v")]),
            Request(
                b"GET", b"/", [*HOST, (b"content-length", b"1"), (b"transfer-encoding", b"chunked")]
            ),
            Request(b"GET", b"/", [*HOST, (b"transfer-encoding", b"gzip, chunked")]),
            Request(b"GET", b"/", [*HOST, (b"content-length", b"-1")]),
            Request(b"GET", b"/", HOST, b"2.0"),
            Request(b"GET", b"/", [*HOST, (b"transfer-encoding", b"chunked")], b"1.0"),
        ],
    )
    def test_refuses_invalid_requests(self, request_: Request) -> None:
        with pytest.raises(LocalProtocolError):
            ClientConnection().send(request_)

    def test_body_must_match_its_length(self) -> None:
        conn = ClientConnection()
        conn.send(Request(b"POST", b"/", [*HOST, (b"content-length", b"2")]))
        with pytest.raises(LocalProtocolError, match="longer"):
            conn.send(Data(b"abc"))
        with pytest.raises(LocalProtocolError, match="shorter"):
            conn.send(EndOfMessage())
        no_body = ClientConnection()
        no_body.send(Request(b"GET", b"/", HOST))
        with pytest.raises(LocalProtocolError):
            no_body.send(Data(b"x"))

    def test_no_request_while_the_body_is_unfinished(self) -> None:
        conn = ClientConnection()
        conn.send(Request(b"POST", b"/", [*HOST, (b"content-length", b"2")]))
        with pytest.raises(LocalProtocolError):
            conn.send(Request(b"GET", b"/", HOST))


class TestKeepAlive:
    def test_pipelined_responses_in_order(self) -> None:
        conn = ClientConnection()
        get(conn)
        get(conn, b"HEAD")
        get(conn)
        assert conn.pending_responses == 3
        conn.receive_data(
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na"
            b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n"
            b"HTTP/1.1 201 Created\r\ncontent-length: 1\r\n\r\nc"
        )
        events = []
        while (event := conn.next_event()) is not PAUSED:
            events.append(event)
        statuses = [e.status_code for e in events if isinstance(e, Response)]
        assert statuses == [200, 200, 201]
        assert [e.data for e in events if isinstance(e, Data)] == [b"a", b"c"]
        assert conn.keep_alive and conn.pending_responses == 0

    def test_our_connection_close(self) -> None:
        conn = ClientConnection()
        get(conn, headers=[(b"connection", b"close")])
        assert not conn.keep_alive
        assert conn.our_state is State.MUST_CLOSE
        with pytest.raises(LocalProtocolError):
            get(conn)

    def test_server_closes_idle_connection(self) -> None:
        conn = ClientConnection()
        get(conn)
        conn.receive_data(b"HTTP/1.1 204 No Content\r\n\r\n")
        assert isinstance(conn.next_event(), Response)
        assert conn.next_event() == EndOfMessage()
        assert conn.next_event() is PAUSED
        conn.receive_data(b"")
        assert isinstance(conn.next_event(), ConnectionClosed)

    def test_final_response_before_the_body_closes(self) -> None:
        # RFC 9110 10.1.1: a client that sent Expect: 100-continue and got a final response
        # instead may close; the next message boundary is unknowable, so we must.
        conn = ClientConnection()
        conn.send(
            Request(b"POST", b"/", [*HOST, (b"content-length", b"5"), (b"expect", b"100-continue")])
        )
        assert conn.waiting_for_continue
        conn.receive_data(b"HTTP/1.1 417 Expectation Failed\r\ncontent-length: 0\r\n\r\n")
        assert conn.next_event() == Response(
            417, [(b"content-length", b"0")], b"Expectation Failed"
        )
        assert conn.next_event() == EndOfMessage()
        assert not conn.keep_alive

    def test_continue_then_body(self) -> None:
        conn = ClientConnection()
        conn.send(
            Request(b"POST", b"/", [*HOST, (b"content-length", b"2"), (b"expect", b"100-continue")])
        )
        conn.receive_data(b"HTTP/1.1 100 Continue\r\n\r\n")
        assert conn.next_event() == InformationalResponse(100, [], b"Continue")
        assert not conn.waiting_for_continue
        conn.send(Data(b"ok"))
        conn.send(EndOfMessage())
        conn.receive_data(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        assert isinstance(conn.next_event(), Response)
        assert conn.next_event() == EndOfMessage()
        assert conn.keep_alive

    def test_upgrade_hands_over_the_rest(self) -> None:
        conn = ClientConnection()
        get(conn, headers=[(b"connection", b"Upgrade"), (b"upgrade", b"websocket")])
        conn.receive_data(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n\x81")
        assert conn.next_event() == InformationalResponse(
            101, [(b"upgrade", b"websocket")], b"Switching Protocols"
        )
        conn.receive_data(b"\x00")
        assert conn.next_event() is PAUSED
        assert conn.their_state is State.SWITCHED_PROTOCOL
        assert conn.trailing_data == b"\x81\x00"


class TestErrorsAndLimits:
    def test_unsolicited_bytes(self) -> None:
        conn = ClientConnection()
        conn.receive_data(b"HTTP/1.1 200 OK\r\n\r\n")
        with pytest.raises(InvalidResponse, match="no response was awaited"):
            conn.next_event()
        assert conn.their_state is State.ERROR and not conn.keep_alive

    def test_garbage_refused_early(self) -> None:
        conn = ClientConnection()
        get(conn)
        conn.receive_data(b"<html>")
        with pytest.raises(InvalidResponse, match="not an HTTP response"):
            conn.next_event()

    def test_buffer_guard(self) -> None:
        conn = ClientConnection(Limits(max_buffered_bytes=10))
        conn.receive_data(b"x" * 11)
        with pytest.raises(LocalProtocolError):
            conn.receive_data(b"y")

    def test_close_delimited_body_size_limit(self) -> None:
        conn = ClientConnection(Limits(max_body_size=4))
        get(conn)
        conn.receive_data(b"HTTP/1.1 200 OK\r\n\r\n12345")
        assert isinstance(conn.next_event(), Response)
        with pytest.raises(Exception, match="over the limit"):
            conn.next_event()


class TestDeadlines:
    def test_head_deadline(self) -> None:
        conn = ClientConnection(Limits(head_timeout=5), now=100)
        get(conn)
        assert conn.next_deadline() is None  # the server may think as long as it likes
        conn.receive_data(b"HTTP/1.1 200", now=101)
        assert conn.next_event(now=101) is NEED_DATA
        assert conn.next_deadline() == (106, Timer.HEAD)
        conn.handle_timeout(105.9)
        with pytest.raises(ResponseTimeout, match="head"):
            conn.handle_timeout(106)

    def test_body_deadline(self) -> None:
        conn = ClientConnection(Limits(body_timeout=7), now=0)
        get(conn)
        conn.receive_data(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nab", now=1)
        assert isinstance(conn.next_event(now=1), Response)
        assert conn.next_event(now=1) == Data(b"ab")
        assert conn.next_event(now=2) is NEED_DATA
        assert conn.next_deadline() == (9, Timer.BODY)
        conn.receive_data(b"cd", now=3)
        assert conn.next_deadline() is None
        assert conn.next_event(now=3) == Data(b"cd")
        assert conn.next_event(now=3) == EndOfMessage()
        assert conn.next_deadline() is None


class TestNoClockMeansNoDeadlines:
    """``ClientConnection()`` defaults ``now`` as ``ServerConnection()`` does: no clock, no timer.

    With ``now=0.0`` by default, a user who forgot ``now=`` at construction and then passed
    ``loop.time()`` readings got a head deadline at 0 + head_timeout: expired at once.
    """

    def test_the_default_is_none_on_both_sides(self) -> None:
        client = inspect.signature(ClientConnection).parameters["now"].default
        server = inspect.signature(ServerConnection).parameters["now"].default
        assert client is None and server is None

    def test_a_head_started_without_a_clock_times_from_the_first_now(self) -> None:
        conn = ClientConnection(Limits(head_timeout=5))  # a user who forgot now=
        get(conn)
        conn.receive_data(b"HTTP/1.1 200")
        assert conn.next_event() is NEED_DATA
        assert conn.next_deadline() is None
        conn.handle_timeout(6271.0)  # loop.time() reads ~6271: not a timeout at once
        assert conn.next_deadline() == (6276.0, Timer.HEAD)
        with pytest.raises(ResponseTimeout, match="head"):
            conn.handle_timeout(6276.0)

    def test_a_later_receive_with_a_clock_starts_the_head_timer(self) -> None:
        conn = ClientConnection(Limits(head_timeout=5))
        get(conn)
        conn.receive_data(b"HTTP/1.1 2", now=6271.0)
        assert conn.next_event(now=6271.0) is NEED_DATA
        assert conn.next_deadline() == (6276.0, Timer.HEAD)
        conn.handle_timeout(6275.0)

    def test_a_body_wait_without_a_clock_times_from_the_first_now(self) -> None:
        conn = ClientConnection(Limits(body_timeout=7))
        get(conn)
        conn.receive_data(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nab")
        assert isinstance(conn.next_event(), Response)
        assert conn.next_event() == Data(b"ab")
        assert conn.next_event() is NEED_DATA
        assert conn.next_deadline() is None
        assert conn.next_event(now=500.0) is NEED_DATA
        assert conn.next_deadline() == (507.0, Timer.BODY)
