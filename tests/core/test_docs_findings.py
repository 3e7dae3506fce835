"""Core bugs the docs author hit while writing the guide, each as a library user hits it."""

from __future__ import annotations

from tether.http1 import (
    NEED_DATA,
    Data,
    EndOfMessage,
    Request,
    Response,
    ServerConnection,
    Timer,
)
from tether.limits import Limits

_GET = b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n"


def _answer(conn: ServerConnection, now: float) -> None:
    while not isinstance(conn.next_event(now=now), EndOfMessage):
        pass
    conn.send(Response(200, [(b"content-length", b"2")]))
    conn.send(Data(b"ok"))
    conn.send(EndOfMessage())


class TestPipelinedHeadBehindASlowReader:
    """A pipelined head already buffered whole is not a slow head: no 408 for it."""

    def test_a_whole_buffered_head_gets_no_408_while_the_server_is_still_writing(self) -> None:
        limits = Limits(head_timeout=10.0)
        conn = ServerConnection(limits, now=0.0)
        # The client pipelines two requests and then reads nothing.
        conn.receive_data(_GET % 1 + _GET % 2, now=0.0)
        _answer(conn, now=0.0)
        assert conn.start_next_cycle(now=1.0)
        # The server is blocked writing the first response (the client does not read), so it
        # does not call next_event; its timer fires at whatever the core said.
        assert conn.next_deadline() is None
        assert conn.handle_timeout(1.0 + 60.0) is None
        # Once the write goes through, the second request is there, whole.
        request = conn.next_event(now=70.0)
        assert isinstance(request, Request) and request.target == b"/2"

    def test_a_partial_pipelined_head_still_times_out(self) -> None:
        limits = Limits(head_timeout=10.0)
        conn = ServerConnection(limits, now=0.0)
        conn.receive_data(_GET % 1 + b"GET /2 HTTP/1.1\r\nHo", now=0.0)
        _answer(conn, now=0.0)
        assert conn.start_next_cycle(now=1.0)
        assert conn.next_deadline() == (11.0, Timer.HEAD)
        assert conn.next_event(now=1.0) is NEED_DATA
        assert conn.next_deadline() == (11.0, Timer.HEAD)
        out = conn.handle_timeout(11.0)
        assert out is not None and out.startswith(b"HTTP/1.1 408 ")

    def test_a_head_completed_by_a_receive_has_no_deadline_before_next_event(self) -> None:
        conn = ServerConnection(Limits(head_timeout=10.0), now=0.0)
        conn.receive_data(b"GET / HTTP/1.1\r\n", now=0.0)
        assert conn.next_event(now=0.0) is NEED_DATA
        conn.receive_data(b"Host: a\r\n\r\n", now=5.0)
        assert conn.next_deadline() is None
        assert isinstance(conn.next_event(now=50.0), Request)
