"""ServerConnection behaviour beyond parsing: responses, keep-alive, 100-continue,
draining, pipelining, upgrades, deadlines and error responses (RFC 9110, RFC 9112)."""

from __future__ import annotations

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.errors import BadRequest, LocalProtocolError, RequestTimeout
from tether.http1 import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
    ServerConnection,
    State,
    Timer,
    date_header,
)
from tether.limits import Limits

GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
GET10 = b"GET / HTTP/1.0\r\n\r\n"


def request_of(wire: bytes, limits: Limits | None = None) -> ServerConnection:
    conn = ServerConnection(limits)
    conn.receive_data(wire)
    assert isinstance(conn.next_event(), Request)
    return conn


def h11_client_read(request: bytes, response: bytes, method: bytes = b"GET") -> list[object]:
    """Parse our response bytes with h11 acting as the client that sent ``request``."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method=method, target="/", headers=[("Host", "a")]))
    client.send(h11.EndOfMessage())
    client.receive_data(response)
    events: list[object] = []
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA:
            client.receive_data(b"")
            continue
        events.append(event)
        if isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            return events


class TestResponseFraming:
    """RFC 9112 6: the core chooses the framing of what it sends."""

    def test_content_length_given(self) -> None:
        conn = request_of(GET)
        out = conn.send(Response(200, [(b"content-length", b"5")]))
        out += conn.send(Data(b"hello")) + conn.send(EndOfMessage())
        assert out == b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"
        assert conn.keep_alive and conn.our_state is State.DONE

    def test_chunked_when_length_unknown(self) -> None:
        conn = request_of(GET)
        out = conn.send(Response(200, [(b"x", b"y")]))
        assert out == b"HTTP/1.1 200 OK\r\nx: y\r\ntransfer-encoding: chunked\r\n\r\n"
        assert conn.send(Data(b"")) == b""  # an empty chunk would end the body
        assert conn.send(Data(b"abc")) == b"3\r\nabc\r\n"
        assert conn.send(EndOfMessage([(b"x-sum", b"1")])) == b"0\r\nx-sum: 1\r\n\r\n"

    def test_close_delimited_for_http10(self) -> None:
        conn = request_of(GET10)
        out = conn.send(Response(200))
        assert b"transfer-encoding" not in out and b"connection: close" in out
        assert conn.send(Data(b"abc")) == b"abc"
        conn.send(EndOfMessage())
        assert not conn.keep_alive and conn.our_state is State.MUST_CLOSE

    def test_http10_keep_alive_needs_length(self) -> None:
        conn = request_of(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        out = conn.send(Response(200, [(b"content-length", b"0")]))
        assert out.endswith(b"connection: keep-alive\r\n\r\n")
        conn.send(EndOfMessage())
        assert conn.start_next_cycle()

    def test_head_response_has_no_body(self) -> None:
        conn = request_of(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
        head = conn.send(Response(200, [(b"content-length", b"5")]))
        assert head.endswith(b"content-length: 5\r\n\r\n")
        assert conn.send(Data(b"hello")) == b""
        assert conn.send(EndOfMessage()) == b""
        assert conn.keep_alive

    @pytest.mark.parametrize("status", [204, 304])
    def test_no_body_statuses(self, status: int) -> None:
        conn = request_of(GET)
        head = conn.send(Response(status, [(b"content-length", b"7")]))
        # RFC 9110 8.6: never Content-Length in a 204; a 304 may carry the full length.
        assert (b"content-length" in head) == (status == 304)
        assert b"transfer-encoding" not in head
        with pytest.raises(LocalProtocolError):
            conn.send(Data(b"x"))
        assert conn.send(EndOfMessage()) == b""

    def test_body_longer_than_length_refused(self) -> None:
        conn = request_of(GET)
        conn.send(Response(200, [(b"content-length", b"2")]))
        with pytest.raises(LocalProtocolError):
            conn.send(Data(b"abc"))

    def test_body_shorter_than_length_refused(self) -> None:
        conn = request_of(GET)
        conn.send(Response(200, [(b"content-length", b"2")]))
        conn.send(Data(b"a"))
        with pytest.raises(LocalProtocolError):
            conn.send(EndOfMessage())

    @pytest.mark.parametrize(
        "field",
        [
            (b"x", b"a\r\nset-cookie: evil"),
            (b"x", b"a\nb"),
            (b"x", b"a\x00b"),
            (b"x y", b"v"),
            (b"", b"v"),
            (b"x:", b"v"),
        ],
    )
    def test_response_splitting_refused(self, field: tuple[bytes, bytes]) -> None:
        conn = request_of(GET)
        with pytest.raises(LocalProtocolError):
            conn.send(Response(200, [field]))
        # Nothing was sent: a correct response can still go out.
        assert conn.send(Response(500, [(b"content-length", b"0")])).startswith(b"HTTP/1.1 500")

    def test_splitting_in_trailers_and_1xx_refused(self) -> None:
        conn = request_of(GET)
        with pytest.raises(LocalProtocolError):
            conn.send(InformationalResponse(103, [(b"link", b"a\r\nx: y")]))
        conn.send(Response(200))
        with pytest.raises(LocalProtocolError):
            conn.send(EndOfMessage([(b"x-sum", b"1\r\n\r\nHTTP/1.1 200 OK")]))

    def test_reason_with_crlf_refused(self) -> None:
        conn = request_of(GET)
        with pytest.raises(LocalProtocolError):
            conn.send(Response(200, reason=b"OK\r\nx: y"))

    def test_only_chunked_can_be_sent(self) -> None:
        conn = request_of(GET)
        with pytest.raises(LocalProtocolError):
            conn.send(Response(200, [(b"transfer-encoding", b"gzip")]))

    def test_trailers_need_chunked(self) -> None:
        conn = request_of(GET)
        conn.send(Response(200, [(b"content-length", b"0")]))
        with pytest.raises(LocalProtocolError):
            conn.send(EndOfMessage([(b"x", b"y")]))

    def test_custom_reason_and_unknown_status(self) -> None:
        conn = request_of(GET)
        assert conn.send(Response(599, reason=b"Custom")).startswith(b"HTTP/1.1 599 Custom\r\n")

    def test_out_of_order_events_refused(self) -> None:
        conn = ServerConnection()
        with pytest.raises(LocalProtocolError):
            conn.send(Response(200))
        conn = request_of(GET)
        with pytest.raises(LocalProtocolError):
            conn.send(Data(b"x"))
        conn.send(Response(200, [(b"content-length", b"0")]))
        with pytest.raises(LocalProtocolError):
            conn.send(Response(200))
        with pytest.raises(LocalProtocolError):
            conn.send(InformationalResponse(100))

    @given(
        status=st.sampled_from([200, 201, 202, 206, 301, 404, 418, 500, 503]),
        body=st.lists(st.binary(max_size=50), max_size=5),
        length_known=st.booleans(),
        head=st.booleans(),
    )
    def test_h11_client_reads_our_responses(
        self, status: int, body: list[bytes], length_known: bool, head: bool
    ) -> None:
        method = b"HEAD" if head else b"GET"
        conn = request_of(b"%s / HTTP/1.1\r\nHost: a\r\n\r\n" % method)
        whole = b"".join(body)
        headers = [(b"content-length", str(len(whole)).encode())] if length_known else []
        out = conn.send(Response(status, [(b"x-test", b"1"), *headers]))
        for piece in body:
            out += conn.send(Data(piece))
        out += conn.send(EndOfMessage())
        events = h11_client_read(b"", out, method)
        response = events[0]
        assert isinstance(response, h11.Response) and response.status_code == status
        data = b"".join(bytes(e.data) for e in events if isinstance(e, h11.Data))
        assert data == (b"" if head else whole)


class TestFrameBody:
    """Body bytes sent outside send() (sendfile) are still framed and counted by the core."""

    def test_length(self) -> None:
        conn = request_of(GET)
        conn.send(Response(200, [(b"content-length", b"10")]))
        assert conn.frame_body(6) == (b"", b"")
        with pytest.raises(LocalProtocolError):
            conn.frame_body(5)
        assert conn.frame_body(4) == (b"", b"")
        assert conn.send(EndOfMessage()) == b""

    def test_chunked(self) -> None:
        conn = request_of(GET)
        conn.send(Response(200))
        assert conn.frame_body(300) == (b"12c\r\n", b"\r\n")
        assert conn.frame_body(0) == (b"", b"")

    def test_head_and_no_body(self) -> None:
        conn = request_of(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
        conn.send(Response(200, [(b"content-length", b"10")]))
        assert conn.frame_body(10) is None
        conn = request_of(GET)
        conn.send(Response(304))
        with pytest.raises(LocalProtocolError):
            conn.frame_body(1)

    def test_before_the_response(self) -> None:
        with pytest.raises(LocalProtocolError):
            request_of(GET).frame_body(1)


class TestKeepAlive:
    """RFC 9112 9.3 and 9.6."""

    def test_app_connection_close(self) -> None:
        conn = request_of(GET)
        head = conn.send(Response(200, [(b"Connection", b"close"), (b"content-length", b"0")]))
        assert head.count(b"onnection") == 1 and b"connection: close" in head
        conn.send(EndOfMessage())
        assert not conn.keep_alive and not conn.start_next_cycle()

    def test_client_connection_close(self) -> None:
        conn = request_of(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert not conn.keep_alive
        assert b"connection: close" in conn.send(Response(200, [(b"content-length", b"0")]))

    def test_max_requests(self) -> None:
        conn = ServerConnection(Limits(max_requests=2))
        conn.receive_data(GET * 3)
        for expected in (True, False):
            assert isinstance(conn.next_event(), Request)
            assert isinstance(conn.next_event(), EndOfMessage)
            head = conn.send(Response(200, [(b"content-length", b"0")]))
            assert (b"connection: close" in head) == (not expected)
            conn.send(EndOfMessage())
            assert conn.start_next_cycle() is expected

    def test_pipelined_requests_wait_in_order(self) -> None:
        conn = ServerConnection()
        conn.receive_data(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
        first = conn.next_event()
        assert isinstance(first, Request) and first.target == b"/1"
        assert isinstance(conn.next_event(), EndOfMessage)
        assert conn.next_event() is PAUSED
        conn.send(Response(200, [(b"content-length", b"0")]))
        assert conn.next_event() is PAUSED  # still answering /1
        conn.send(EndOfMessage())
        assert conn.next_event() is PAUSED  # until the next cycle starts
        assert conn.start_next_cycle()
        second = conn.next_event()
        assert isinstance(second, Request) and second.target == b"/2"

    def test_buffer_guard(self) -> None:
        conn = ServerConnection(Limits(max_buffered_bytes=100))
        conn.receive_data(GET)
        conn.next_event()
        conn.receive_data(b"x" * 101)
        with pytest.raises(LocalProtocolError):
            conn.receive_data(b"y")

    def test_small_unread_body_is_drained(self) -> None:
        conn = request_of(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        conn.send(Response(200, [(b"content-length", b"0")]))
        conn.send(EndOfMessage())
        assert conn.start_next_cycle()
        assert conn.next_event() is NEED_DATA
        conn.receive_data(b"defghij" + GET)
        assert isinstance(conn.next_event(), Request)

    def test_large_unread_body_closes(self) -> None:
        conn = request_of(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nabc",
            Limits(max_drain_size=1000),
        )
        conn.send(Response(413, [(b"content-length", b"0")]))
        conn.send(EndOfMessage())
        assert not conn.start_next_cycle() and not conn.keep_alive

    def test_unread_chunked_body_closes(self) -> None:
        conn = request_of(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        conn.send(Response(200, [(b"content-length", b"0")]))
        conn.send(EndOfMessage())
        assert not conn.start_next_cycle()

    def test_clean_close_between_requests(self) -> None:
        conn = ServerConnection()
        conn.receive_data(b"")
        assert isinstance(conn.next_event(), ConnectionClosed)
        assert conn.their_state is State.CLOSED

    def test_closed_stays_closed(self) -> None:
        conn = ServerConnection()
        conn.receive_data(b"")
        for _ in range(3):
            assert isinstance(conn.next_event(), ConnectionClosed)

    def test_data_after_eof_is_misuse(self) -> None:
        conn = ServerConnection()
        conn.receive_data(b"")
        with pytest.raises(LocalProtocolError):
            conn.receive_data(b"x")


class TestExpectContinue:
    """RFC 9110 10.1.1."""

    WIRE = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"

    def test_continue_then_body(self) -> None:
        conn = request_of(self.WIRE)
        assert conn.expects_continue
        assert conn.next_event() is NEED_DATA
        assert conn.send(InformationalResponse(100)) == b"HTTP/1.1 100 Continue\r\n\r\n"
        assert not conn.expects_continue
        conn.receive_data(b"abc")
        assert conn.next_event() == Data(b"abc")
        assert isinstance(conn.next_event(), EndOfMessage)
        conn.send(Response(200, [(b"content-length", b"0")]))
        conn.send(EndOfMessage())
        assert conn.start_next_cycle()

    def test_final_response_without_continue_closes(self) -> None:
        conn = request_of(self.WIRE)
        head = conn.send(Response(417, [(b"content-length", b"0")]))
        assert b"connection: close" in head and not conn.expects_continue
        conn.send(EndOfMessage())
        assert not conn.start_next_cycle()

    def test_early_hints(self) -> None:
        conn = request_of(GET)
        out = conn.send(InformationalResponse(103, [(b"link", b"</a.css>; rel=preload")]))
        assert out == b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n"


class TestUpgrade:
    WIRE = (
        b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )

    def test_switch_hands_over_trailing_bytes(self) -> None:
        conn = ServerConnection()
        conn.receive_data(self.WIRE + b"\x81\x85frame")
        assert isinstance(conn.next_event(), Request)
        assert isinstance(conn.next_event(), EndOfMessage)
        out = conn.send(
            InformationalResponse(101, [(b"upgrade", b"websocket"), (b"connection", b"Upgrade")])
        )
        assert out.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
        assert conn.our_state is State.SWITCHED_PROTOCOL
        assert conn.trailing_data == b"\x81\x85frame"
        assert conn.next_event() is PAUSED

    def test_refusing_the_upgrade_continues_http(self) -> None:
        conn = request_of(self.WIRE)
        conn.next_event()
        conn.send(Response(426, [(b"content-length", b"0")]))
        conn.send(EndOfMessage())
        assert conn.start_next_cycle()

    def test_101_without_upgrade_request_is_misuse(self) -> None:
        conn = request_of(GET)
        conn.next_event()
        with pytest.raises(LocalProtocolError):
            conn.send(InformationalResponse(101))


class TestDeadlines:
    """Time enters as ``now``; the core reports deadlines and what their expiry means."""

    LIMITS = Limits(head_timeout=10, keep_alive_timeout=5, body_timeout=30)

    def test_new_connection_idle(self) -> None:
        conn = ServerConnection(self.LIMITS, now=100.0)
        assert conn.next_deadline() == (110.0, Timer.KEEP_ALIVE)
        assert conn.handle_timeout(109.9) is None
        assert conn.handle_timeout(110.0) == b""  # nothing received: close silently

    def test_slow_head_gets_408(self) -> None:
        conn = ServerConnection(self.LIMITS, now=0.0)
        conn.receive_data(b"GET / HTTP/1.1\r\n", now=3.0)
        assert conn.next_event(now=3.0) is NEED_DATA
        conn.receive_data(b"Host: a\r\n", now=12.0)  # trickling does not extend the deadline
        assert conn.next_event(now=12.0) is NEED_DATA
        assert conn.next_deadline() == (13.0, Timer.HEAD)
        out = conn.handle_timeout(13.0)
        assert out is not None and out.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert b"connection: close" in out and not conn.keep_alive

    def test_head_timer_starts_with_first_byte_after_asking_early(self) -> None:
        """A server may ask for an event before any byte arrived; the head timer still starts."""
        conn = ServerConnection(self.LIMITS, now=0.0)
        assert conn.next_event(now=1.0) is NEED_DATA
        conn.receive_data(b"GET / HT", now=2.0)
        assert conn.next_event(now=2.0) is NEED_DATA
        assert conn.next_deadline() == (12.0, Timer.HEAD)
        conn.receive_data(b"TP/1.1\r\n", now=3.0)
        assert conn.next_event(now=3.0) is NEED_DATA
        assert conn.next_deadline() == (12.0, Timer.HEAD)
        out = conn.handle_timeout(12.0)
        assert out is not None and out.startswith(b"HTTP/1.1 408 ")

    def test_keep_alive_idle_after_response(self) -> None:
        conn = ServerConnection(self.LIMITS, now=0.0)
        conn.receive_data(GET, now=1.0)
        conn.next_event(now=1.0)
        conn.next_event(now=1.0)
        assert conn.next_deadline() is None  # the application is working
        conn.send(Response(200, [(b"content-length", b"0")]))
        conn.send(EndOfMessage())
        conn.start_next_cycle(now=2.0)
        assert conn.next_deadline() == (7.0, Timer.KEEP_ALIVE)
        assert conn.handle_timeout(7.5) == b""

    def test_body_stall(self) -> None:
        conn = ServerConnection(self.LIMITS, now=0.0)
        conn.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc", now=1.0)
        conn.next_event(now=1.0)
        conn.next_event(now=1.0)
        assert conn.next_deadline() is None  # not waiting for the body yet
        assert conn.next_event(now=50.0) is NEED_DATA  # the app asks for more at t=50
        assert conn.next_deadline() == (80.0, Timer.BODY)
        conn.receive_data(b"de", now=60.0)
        assert conn.next_event(now=60.0) == Data(b"de")
        assert conn.next_event(now=61.0) is NEED_DATA
        assert conn.next_deadline() == (91.0, Timer.BODY)
        out = conn.handle_timeout(91.0)  # the response has not started: 408, then close
        assert out is not None and out.startswith(b"HTTP/1.1 408 Request Timeout\r\n")


class TestErrorResponses:
    def test_error_response_bytes(self) -> None:
        conn = ServerConnection()
        conn.receive_data(b"GET / HTTP/1.1\r\n\r\n")
        with pytest.raises(BadRequest) as info:
            conn.next_event()
        out = conn.error_response(info.value, [date_header(0.0)])
        status, _, rest = out.partition(b"\r\n")
        assert status == b"HTTP/1.1 400 Bad Request"
        assert b"date: Thu, 01 Jan 1970 00:00:00 GMT\r\n" in rest
        assert b"connection: close\r\n" in rest
        events = h11_client_read(b"", out)
        assert isinstance(events[0], h11.Response) and events[0].status_code == 400

    def test_too_late_for_an_error_response(self) -> None:
        conn = request_of(GET)
        conn.send(Response(200))
        assert conn.error_response(RequestTimeout("x")) == b""
        assert not conn.keep_alive

    def test_send_failed(self) -> None:
        conn = request_of(GET)
        conn.send(Response(200))
        conn.send_failed()
        assert conn.our_state is State.ERROR and not conn.keep_alive

    def test_after_an_error_no_more_events(self) -> None:
        conn = ServerConnection()
        conn.receive_data(b"BAD\r\n\r\n" + GET)
        with pytest.raises(BadRequest):
            conn.next_event()
        assert conn.their_state is State.ERROR
        assert conn.next_event() is PAUSED


def test_date_header_is_imf_fixdate() -> None:
    assert date_header(784111777.0) == (b"date", b"Sun, 06 Nov 1994 08:49:37 GMT")
    assert date_header(784111777.9) == (b"date", b"Sun, 06 Nov 1994 08:49:37 GMT")


def test_fresh_until_the_first_byte() -> None:
    """``fresh``: nothing received yet (what a graceful shutdown treats differently from a
    connection idle between requests); a partial head or a served request ends it."""
    conn = ServerConnection(now=0.0)
    assert conn.fresh
    conn.receive_data(b"GE", now=0.0)
    assert not conn.fresh
    conn.receive_data(b"T / HTTP/1.1\r\nHost: a\r\n\r\n", now=0.0)
    assert isinstance(conn.next_event(now=0.0), Request)
    assert not conn.fresh
    conn.next_event(now=0.0)  # EndOfMessage
    conn.send(Response(204, []))
    conn.send(EndOfMessage())
    assert conn.start_next_cycle(now=0.0)
    assert not conn.fresh  # idle between requests: not fresh
