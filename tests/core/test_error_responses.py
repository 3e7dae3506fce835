"""Error responses the core writes itself (``error_response``, the 408 of ``handle_timeout``):
extra fields pass the checks of ``send`` (RFC 9112 5.1, RFC 9110 5.5), and the answer to a
HEAD request carries no body (RFC 9110 9.3.2)."""

from __future__ import annotations

import h11
import pytest

from tether.errors import BadRequest, ContentTooLarge, HeadTooLarge, LocalProtocolError
from tether.http1 import NEED_DATA, EndOfMessage, Request, Response, ServerConnection, date_header
from tether.limits import Limits


def refused(wire: bytes, limits: Limits | None = None) -> tuple[ServerConnection, BadRequest]:
    """A connection whose peer sent ``wire`` and was refused, and the error it was refused with."""
    conn = ServerConnection(limits)
    conn.receive_data(wire)
    with pytest.raises(BadRequest) as info:
        while conn.next_event() is not NEED_DATA:
            pass
    return conn, info.value


def client_reads(response: bytes, method: bytes) -> list[object]:
    """What an h11 client that sent ``method`` makes of ``response``."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method=method, target="/", headers=[("Host", "a")]))
    client.send(h11.EndOfMessage())
    client.receive_data(response)
    client.receive_data(b"")
    events: list[object] = []
    while not events or not isinstance(events[-1], (h11.EndOfMessage, h11.ConnectionClosed)):
        events.append(client.next_event())
    return events


class TestExtraFieldsAreChecked:
    """RFC 9112 5.1 and RFC 9110 5.5: what the core writes is a field line, never two."""

    @pytest.mark.parametrize(
        "field",
        [
            (b"x", b"a\r\nSet-Cookie: evil=1"),
            (b"x", b"a\nSet-Cookie: evil=1"),
            (b"x", b"a\rb"),
            (b"x", b"a\0b"),
            (b"x", b"a\x01b"),
            (b"x", b"a\x7fb"),
            (b"x y", b"1"),
            (b"x:y", b"1"),
            (b"x\r\nSet-Cookie", b"evil=1"),
            (b"", b"1"),
            (b"content-length", b"0"),
            (b"Transfer-Encoding", b"chunked"),
            (b"connection", b"keep-alive"),
        ],
    )
    def test_bad_extra_field_refused(self, field: tuple[bytes, bytes]) -> None:
        conn, error = refused(b"GET / HTTP/1.1\r\n\r\n")
        with pytest.raises(LocalProtocolError):
            conn.error_response(error, [date_header(0.0), field])

    def test_str_field_refused(self) -> None:
        conn, error = refused(b"GET / HTTP/1.1\r\n\r\n")
        with pytest.raises(LocalProtocolError):
            conn.error_response(error, [("x", "1")])  # type: ignore[list-item]

    def test_refusal_leaves_the_error_response_possible(self) -> None:
        conn, error = refused(b"GET / HTTP/1.1\r\n\r\n")
        with pytest.raises(LocalProtocolError):
            conn.error_response(error, [(b"x", b"a\r\nSet-Cookie: evil=1")])
        out = conn.error_response(error, [(b"server", b"tether")])
        assert out.startswith(b"HTTP/1.1 400 ") and b"\r\nserver: tether\r\n" in out

    def test_408_carries_extra_fields(self) -> None:
        conn = ServerConnection(Limits(head_timeout=10), now=0.0)
        conn.receive_data(b"GET / HTTP/1.1\r\n", now=1.0)
        assert conn.next_event(now=1.0) is NEED_DATA
        out = conn.handle_timeout(11.0, [date_header(0.0), (b"server", b"tether")])
        assert out is not None and out.startswith(b"HTTP/1.1 408 ")
        assert b"\r\ndate: Thu, 01 Jan 1970 00:00:00 GMT\r\nserver: tether\r\n" in out
        events = client_reads(out, b"GET")
        assert isinstance(events[0], h11.Response) and events[0].status_code == 408

    def test_408_refuses_bad_extra_fields(self) -> None:
        conn = ServerConnection(Limits(head_timeout=10), now=0.0)
        conn.receive_data(b"GET / HTTP/1.1\r\n", now=1.0)
        assert conn.next_event(now=1.0) is NEED_DATA
        with pytest.raises(LocalProtocolError):
            conn.handle_timeout(11.0, [(b"x", b"1\r\n\r\nHTTP/1.1 200 OK")])


class TestHeadRequestErrors:
    """RFC 9110 9.3.2: the server MUST NOT send content in the response to HEAD; it SHOULD send
    the fields a GET would get, Content-Length included."""

    def test_error_in_a_head_request_has_no_body(self) -> None:
        wire = b"HEAD / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n"
        conn, error = refused(wire)
        head_out = conn.error_response(error)
        get_conn, get_error = refused(wire.replace(b"HEAD", b"GET", 1))
        get_out = get_conn.error_response(get_error)
        assert head_out.endswith(b"\r\n\r\n")
        assert get_out.startswith(head_out) and len(get_out) > len(head_out)
        events = client_reads(head_out + b"HTTP/1.1 200 OK\r\n\r\n", b"HEAD")
        assert isinstance(events[0], h11.Response) and events[0].status_code == 400
        assert isinstance(events[1], h11.EndOfMessage)

    def test_body_too_large_for_a_head_request(self) -> None:
        conn = ServerConnection(Limits(max_body_size=5))
        conn.receive_data(b"HEAD / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\n")
        with pytest.raises(ContentTooLarge) as info:
            conn.next_event()
        out = conn.error_response(info.value)
        assert out.startswith(b"HTTP/1.1 413 ") and out.endswith(b"\r\n\r\n")

    def test_partial_head_request_too_large(self) -> None:
        conn = ServerConnection(Limits(max_head_size=64))
        conn.receive_data(b"HEAD / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 80)
        with pytest.raises(HeadTooLarge) as info:
            conn.next_event()
        out = conn.error_response(info.value)
        assert out.startswith(b"HTTP/1.1 431 ") and out.endswith(b"\r\n\r\n")

    def test_slow_head_request_gets_408_without_body(self) -> None:
        conn = ServerConnection(Limits(head_timeout=10), now=0.0)
        conn.receive_data(b"HEAD / HTTP/1.1\r\nHost: a\r\n", now=1.0)
        assert conn.next_event(now=1.0) is NEED_DATA
        out = conn.handle_timeout(11.0)
        assert out is not None and out.startswith(b"HTTP/1.1 408 ")
        assert out.endswith(b"\r\n\r\n") and b"content-length: " in out

    def test_after_a_head_request_a_get_error_has_a_body(self) -> None:
        """What the reader remembers of one request's method does not leak into the next."""
        conn = ServerConnection()
        conn.receive_data(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert isinstance(conn.next_event(), Request)
        conn.next_event()
        conn.send(Response(200, [(b"content-length", b"3")]))
        conn.send(EndOfMessage())
        assert conn.start_next_cycle()
        conn.receive_data(b"GET / HTTP/1.1\r\n\r\n")
        with pytest.raises(BadRequest) as info:
            conn.next_event()
        out = conn.error_response(info.value)
        assert not out.endswith(b"\r\n\r\n")
