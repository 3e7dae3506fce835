"""``Limits.min_body_rate``: a body must keep an average rate once it has started.

Like Apache's mod_reqtimeout ``body=T,MinRate=R``: while the core waits for body bytes, the
body deadline is the earlier of the stall deadline (``body_timeout`` after the wait began)
and ``body start + body_timeout + bytes received / min_body_rate``. Time is a virtual clock
fed to the core; the body arrives byte by byte.
"""

from __future__ import annotations

import pytest

from tether.http1 import (
    NEED_DATA,
    Data,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
    ServerConnection,
    Timer,
)
from tether.limits import Limits
from tether.serving import server_limits

HEAD = b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n"
CHUNKED = b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
LIMITS = Limits(body_timeout=10, min_body_rate=100)


def started(head: bytes = HEAD, limits: Limits = LIMITS, now: float = 0.0) -> ServerConnection:
    """A connection that has read ``head`` at ``now`` and is waiting for its body."""
    conn = ServerConnection(limits, now=now)
    conn.receive_data(head, now=now)
    assert isinstance(conn.next_event(now=now), Request)
    assert conn.next_event(now=now) is NEED_DATA
    return conn


def trickle(conn: ServerConnection, data: bytes, start: float, every: float) -> float:
    """Feed ``data`` a byte at a time, one every ``every`` seconds, while the core allows it.

    Returns the time at which the core's deadline passed before the next byte was due.
    """
    now = start
    for byte in data:
        deadline = conn.next_deadline()
        assert deadline is not None and deadline[1] is Timer.BODY
        if deadline[0] <= now + every:
            return deadline[0]
        now += every
        conn.receive_data(bytes([byte]), now=now)
        event = conn.next_event(now=now)
        assert type(event) is Data
        assert conn.next_event(now=now) is NEED_DATA
    raise AssertionError("the whole body arrived")


class TestTrickledBody:
    def test_one_byte_every_two_seconds_is_cut_at_about_body_timeout(self) -> None:
        conn = started()
        expired = trickle(conn, b"x" * 1000, start=0.0, every=2.0)
        # 10 s plus 1/100 s per byte received: the bytes of 10 s at one per 2 s add 0.05 s.
        assert 10.0 <= expired <= 10.1
        out = conn.handle_timeout(expired)
        assert out is not None and out.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert b"connection: close" in out and not conn.keep_alive

    def test_without_a_minimum_only_stalls_count(self) -> None:
        conn = started(limits=Limits(body_timeout=10))
        now = 0.0
        for byte in b"x" * 50:
            now += 2.0
            conn.receive_data(bytes([byte]), now=now)
            assert type(conn.next_event(now=now)) is Data
            assert conn.next_event(now=now) is NEED_DATA
            deadline = conn.next_deadline()
            assert deadline == (now + 10.0, Timer.BODY)
        assert conn.handle_timeout(now + 9.9) is None

    def test_a_fast_enough_body_is_never_cut(self) -> None:
        conn = started()
        now = 0.0
        for i in range(1000):
            now += 0.005  # 200 bytes per second, above the minimum of 100
            conn.receive_data(b"x", now=now)
            event = conn.next_event(now=now)
            assert type(event) is Data
            if i < 999:
                assert conn.next_event(now=now) is NEED_DATA
                assert conn.handle_timeout(now) is None
        assert type(conn.next_event(now=now)) is EndOfMessage
        assert conn.next_deadline() is None

    def test_chunked_body_counts_bytes_received_not_sizes_announced(self) -> None:
        """A chunk size announcing a megabyte buys no time: only received bytes do."""
        conn = started(CHUNKED, Limits(body_timeout=10, min_body_rate=100, max_body_size=None))
        conn.receive_data(b"100000\r\n", now=1.0)
        assert conn.next_event(now=1.0) is NEED_DATA
        deadline = conn.next_deadline()
        assert deadline is not None and deadline[0] == pytest.approx(10.0 + 8 / 100)
        expired = trickle(conn, b"y" * 10_000, start=1.0, every=2.0)
        assert 10.0 <= expired <= 10.2
        out = conn.handle_timeout(expired)
        assert out is not None and out.startswith(b"HTTP/1.1 408 ")

    def test_bytes_that_came_with_the_head_count(self) -> None:
        conn = ServerConnection(Limits(body_timeout=10, min_body_rate=1000), now=5.0)
        conn.receive_data(HEAD + b"z" * 300, now=5.0)
        assert isinstance(conn.next_event(now=5.0), Request)
        assert conn.next_event(now=5.0) == Data(b"z" * 300)
        assert conn.next_event(now=6.0) is NEED_DATA
        # Body start 5, plus body_timeout 10, plus 300 bytes at 1000 per second; the stall
        # deadline (6 + 10) is later.
        assert conn.next_deadline() == (pytest.approx(15.3), Timer.BODY)

    def test_the_stall_deadline_still_comes_first_when_earlier(self) -> None:
        conn = started(limits=Limits(body_timeout=10, min_body_rate=1))
        conn.receive_data(b"x" * 500, now=1.0)
        assert type(conn.next_event(now=1.0)) is Data
        assert conn.next_event(now=1.0) is NEED_DATA
        # rate deadline: 0 + 10 + 500 / 1 = 510; stall deadline: 1 + 10
        assert conn.next_deadline() == (11.0, Timer.BODY)


class TestAfterTheResponseStarted:
    def test_expiry_closes_without_a_second_response(self) -> None:
        conn = started()
        conn.send(Response(200, [(b"content-length", b"2")]))
        expired = trickle(conn, b"x" * 1000, start=0.0, every=2.0)
        assert conn.handle_timeout(expired) == b""
        assert not conn.keep_alive

    def test_a_100_continue_does_not_count_as_a_response(self) -> None:
        head = HEAD.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n")
        conn = started(head)
        conn.send(InformationalResponse(100))
        expired = trickle(conn, b"x" * 1000, start=0.0, every=2.0)
        out = conn.handle_timeout(expired)
        assert out is not None and out.startswith(b"HTTP/1.1 408 ")


class TestNextCycle:
    def test_the_rate_clock_restarts_with_each_body(self) -> None:
        short = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n"
        conn = started(short)
        conn.receive_data(b"x", now=1.0)
        assert type(conn.next_event(now=1.0)) is Data
        assert type(conn.next_event(now=1.0)) is EndOfMessage
        conn.send(Response(204))
        conn.send(EndOfMessage())
        assert conn.start_next_cycle(now=100.0)
        conn.receive_data(HEAD, now=100.0)
        assert isinstance(conn.next_event(now=100.0), Request)
        assert conn.next_event(now=100.0) is NEED_DATA
        assert conn.next_deadline() == (110.0, Timer.BODY)

    def test_no_body_no_rate(self) -> None:
        conn = ServerConnection(LIMITS, now=0.0)
        conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now=0.0)
        assert isinstance(conn.next_event(now=0.0), Request)
        assert type(conn.next_event(now=0.0)) is EndOfMessage
        assert conn.next_deadline() is None


def test_limits_default_is_no_minimum_and_negative_is_refused() -> None:
    assert Limits().min_body_rate == 0
    with pytest.raises(ValueError):
        Limits(min_body_rate=-1)


def test_server_limits_maps_the_option() -> None:
    assert server_limits(min_body_rate=500).min_body_rate == 500
    assert server_limits(Limits(min_body_rate=7)).min_body_rate == 7
