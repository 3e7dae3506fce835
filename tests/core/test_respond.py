"""``ServerConnection.respond``: a whole response in one call.

It must write exactly what ``send(Response) + send(Data) + send(EndOfMessage())`` writes and
leave the connection in the same state, for every request shape the framing depends on
(HEAD, HTTP/1.0, 100-continue, ``Connection: close``, a body still unread) and every response
shape (Content-Length or not, 204/304, a body that is too long or too short, invalid fields).
Where the three calls raise, ``respond`` raises too and moves nothing, so a 500 can follow.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.errors import LocalProtocolError
from tether.http1 import NEED_DATA, Data, EndOfMessage, Request, Response, ServerConnection

REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    # 100-continue, body not sent yet: the connection must end after the response.
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n",
    # A body not read by the application yet (the core drains it at the next cycle).
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
]


def _connection(wire: bytes) -> ServerConnection:
    conn = ServerConnection(now=0.0)
    conn.receive_data(wire, 0.0)
    assert type(conn.next_event(0.0)) is Request
    return conn


def _three_sends(conn: ServerConnection, response: Response, body: bytes) -> bytes:
    return conn.send(response) + conn.send(Data(body)) + conn.send(EndOfMessage())


def _state(conn: ServerConnection) -> tuple[object, ...]:
    return (conn.our_state, conn.their_state, conn.keep_alive, conn.expects_continue)


responses = st.builds(
    lambda status, length, extra: (status, length, extra),
    st.sampled_from([200, 201, 204, 304, 404, 500]),
    st.one_of(st.none(), st.integers(0, 6)),
    st.sampled_from([[], [(b"connection", b"close")], [(b"x-bad", b"a\r\nb")], [(b"b d", b"x")]]),
)


@settings(max_examples=400, deadline=None)
@given(
    wire=st.sampled_from(REQUESTS),
    shape=responses,
    body=st.sampled_from([b"", b"hi", b"hello!"]),
)
def test_same_bytes_and_state_as_three_sends(
    wire: bytes, shape: tuple[int, int | None, list[tuple[bytes, bytes]]], body: bytes
) -> None:
    status, length, extra = shape
    headers = [(b"content-type", b"text/plain"), *extra]
    if length is not None:
        headers.append((b"content-length", b"%d" % length))
    response = Response(status, headers)
    one, three = _connection(wire), _connection(wire)
    before = _state(one)
    try:
        expected: bytes | None = _three_sends(three, response, body)
    except LocalProtocolError:
        expected = None
    if expected is None:
        with pytest.raises(LocalProtocolError):
            one.respond(response, body)
        # All or nothing: the refused response moved nothing, and a valid one can still go.
        assert _state(one) == before
        out = one.respond(Response(500, [(b"content-length", b"0")]))
        assert out.startswith(b"HTTP/1.1 500 ")
        return
    assert one.respond(response, body) == expected
    assert _state(one) == _state(three)
    assert one.start_next_cycle(1.0) == three.start_next_cycle(1.0)
    assert _state(one) == _state(three)


def test_pipelined_requests_answered_with_respond() -> None:
    conn = ServerConnection(now=0.0)
    conn.receive_data(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n" * 3, 0.0)
    out = []
    for _ in range(3):
        assert type(conn.next_event(0.0)) is Request
        assert type(conn.next_event(0.0)) is EndOfMessage
        out.append(conn.respond(Response(200, [(b"content-length", b"2")]), b"ok"))
        assert conn.start_next_cycle(0.0)
    assert conn.next_event(0.0) is NEED_DATA
    assert out == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"] * 3


def test_chunked_when_no_length_is_given() -> None:
    conn = _connection(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert conn.respond(Response(200), b"hi") == (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
    )


def test_a_second_response_is_refused() -> None:
    conn = _connection(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    conn.respond(Response(204))
    with pytest.raises(LocalProtocolError):
        conn.respond(Response(204))


def test_only_a_response_is_taken() -> None:
    conn = _connection(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    with pytest.raises(LocalProtocolError):
        conn.respond(Data(b"x"))  # type: ignore[arg-type]


def test_a_tunnel_is_not_a_whole_response() -> None:
    """RFC 9110 9.3.6: a 2xx to CONNECT makes the connection a tunnel, which has no end."""
    conn = ServerConnection(now=0.0)
    conn.receive_data(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 0.0)
    assert type(conn.next_event(0.0)) is Request
    conn.next_event(0.0)
    with pytest.raises(LocalProtocolError, match="tunnel"):
        conn.respond(Response(200))
    assert conn.respond(Response(501, [(b"content-length", b"0")])).startswith(b"HTTP/1.1 501")
