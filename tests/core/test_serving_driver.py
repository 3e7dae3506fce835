"""tether.serving_driver: what a server does with each answer of the core, on a virtual clock."""

from __future__ import annotations

from tether.http1 import Data, EndOfMessage, Request, Response, ServerConnection
from tether.limits import Limits
from tether.serving_driver import ConnectionDriver, Next

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def driver(body_cap: int | None = None, **limits: float) -> ConnectionDriver:
    return ConnectionDriver(ServerConnection(Limits(**limits), now=0.0), body_cap)


def events(d: ConnectionDriver, now: float = 0.0) -> list[object]:
    """Events until the driver says what to do; the last item is that :class:`Next`."""
    out: list[object] = []
    while True:
        event = d.next_event(now)
        out.append(event)
        if isinstance(event, Next):
            return out


def respond(d: ConnectionDriver) -> None:
    d.conn.send(Response(200, [(b"content-length", b"0")]))
    d.conn.send(EndOfMessage())


class TestReading:
    def test_a_request_then_wait_for_the_response(self) -> None:
        d = driver()
        assert d.receive(GET, 0.0) is None
        seen = events(d)
        assert isinstance(seen[0], Request)
        assert isinstance(seen[1], EndOfMessage)
        assert seen[2] is Next.WAIT

    def test_needs_bytes_then_reads(self) -> None:
        d = driver()
        assert d.receive(GET[:5], 0.0) is None
        assert events(d) == [Next.READ]

    def test_eof_with_nothing_pending_closes_quietly(self) -> None:
        d = driver()
        assert d.receive(b"", 0.0) is None
        assert d.eof
        assert events(d) == [Next.CLOSE]
        assert d.output == b""

    def test_a_protocol_error_is_answered_not_raised(self) -> None:
        d = driver()
        d.receive(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 0.0)
        assert events(d)[-1] is Next.CLOSE
        assert d.output.startswith(b"HTTP/1.1 400 ")
        assert "400" in d.reason

    def test_body_pieces_come_through(self) -> None:
        d = driver()
        d.receive(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 0.0)
        seen = events(d)
        assert [type(e) for e in seen[:3]] == [Request, Data, EndOfMessage]


class TestBodyCap:
    """A declared body over the server's cap is refused as the head arrives."""

    def test_declared_length_over_the_cap_is_413(self) -> None:
        d = driver(body_cap=10)
        head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n"
        d.receive(head, 0.0)
        assert events(d) == [Next.CLOSE]
        assert d.output.startswith(b"HTTP/1.1 413 ")
        assert b"100 Continue" not in d.output

    def test_within_the_cap_invites_the_body(self) -> None:
        d = driver(body_cap=10)
        head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n"
        d.receive(head, 0.0)
        assert isinstance(d.next_event(0.0), Request)
        assert d.continue_bytes().startswith(b"HTTP/1.1 100 Continue")

    def test_no_continue_unless_asked(self) -> None:
        d = driver()
        d.receive(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n", 0.0)
        assert isinstance(d.next_event(0.0), Request)
        assert d.continue_bytes() == b""


class TestTimeouts:
    def test_no_deadline_passed_is_a_spurious_wake_up(self) -> None:
        d = driver(head_timeout=5)
        assert d.deadline() == 5.0
        assert d.timeout(4.9) is None

    def test_a_stalled_head_gets_408(self) -> None:
        d = driver(head_timeout=5)
        d.receive(b"GET / HT", 1.0)
        assert events(d, 1.0) == [Next.READ]
        assert d.timeout(7.0) is Next.CLOSE
        assert d.output.startswith(b"HTTP/1.1 408 ")
        assert d.reason == "head timeout"

    def test_keep_alive_expiry_closes_silently(self) -> None:
        d = driver(keep_alive_timeout=2)
        d.receive(GET, 0.0)
        events(d)
        respond(d)
        assert d.finish(1.0) is Next.READ
        assert d.timeout(3.5) is Next.CLOSE
        assert d.output == b""


class TestFinish:
    def test_reuse_with_nothing_buffered_reads(self) -> None:
        d = driver()
        d.receive(GET, 0.0)
        events(d)
        respond(d)
        assert d.finish(0.0) is Next.READ

    def test_pipelined_request_asks_for_events(self) -> None:
        d = driver()
        d.receive(GET + GET, 0.0)
        events(d)
        respond(d)
        assert d.finish(0.0) is None
        assert isinstance(d.next_event(0.0), Request)

    def test_shutting_down_closes(self) -> None:
        d = driver()
        d.receive(GET, 0.0)
        events(d)
        respond(d)
        assert d.finish(0.0, closing=True) is Next.CLOSE

    def test_connection_close_closes(self) -> None:
        d = driver()
        d.receive(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 0.0)
        events(d)
        respond(d)
        assert d.finish(0.0) is Next.CLOSE

    def test_eof_after_the_request_does_not_wait_for_more(self) -> None:
        d = driver()
        d.receive(GET, 0.0)
        d.receive(b"", 0.0)
        events(d)
        respond(d)
        step = d.finish(0.0)
        assert step is None
        assert events(d) == [Next.CLOSE]
