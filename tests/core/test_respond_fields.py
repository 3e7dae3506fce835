"""A response sent from its parts is the response sent as an event, byte for byte.

``ServerConnection.respond_fields`` adds a server's Date and Server, ``Connection: close``, a
declared length and drops an application's Transfer-Encoding in its one pass over the fields;
``ResponseCycle.body`` sends a whole response through it. Both must give exactly what the long
way gives (``with_server_headers``, a ``Response`` event, :meth:`respond`), refuse exactly what
it refuses, and leave the connection in the same state, for any fields, status and request.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from tether.errors import LocalProtocolError
from tether.http1 import EndOfMessage, Request, Response, ServerConnection, State
from tether.serving import with_server_headers
from tether.serving_cycle import ResponseCycle

DATE = (b"date", b"Thu, 03 Dec 2026 04:00:00 GMT")
SERVER = (b"server", b"tether")

REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
    b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
]

names = st.sampled_from(
    [
        b"content-type",
        b"Content-Type",
        b"content-length",
        b"Content-Length",
        b"transfer-encoding",
        b"Transfer-Encoding",
        b"connection",
        b"date",
        b"Date",
        b"server",
        b"SERVER",
        b"x-request-id",
        b"X-Odd Name",
        b"",
        b"set-cookie",
    ]
)
values = st.sampled_from(
    [b"text/plain", b"3", b"13", b"0", b"x", b"chunked", b"gzip, chunked", b"close", b"a\r\nb", b""]
)
fields = st.lists(st.tuples(names, values), max_size=5)
statuses = st.sampled_from([100, 101, 200, 201, 204, 304, 404, 500, 599, 600])
bodies = st.sampled_from([b"", b"abc", b"Hello, world!"])


def _connection(wire: bytes) -> tuple[ServerConnection, Request]:
    conn = ServerConnection()
    conn.receive_data(wire)
    request = conn.next_event()
    assert type(request) is Request
    return conn, request


def _long_way(
    given: list[tuple[bytes, bytes]], strip: bool, close: bool
) -> list[tuple[bytes, bytes]]:
    out = [h for h in given if not (strip and h[0].lower() == b"transfer-encoding")]
    out = with_server_headers(out, DATE, SERVER)
    return [*out, (b"connection", b"close")] if close else out


def _outcome(send: Callable[[], bytes]) -> bytes | type[Exception]:
    """The bytes ``send`` returns, or LocalProtocolError if it raises that."""
    try:
        return send()
    except LocalProtocolError:
        return LocalProtocolError


def _state(conn: ServerConnection) -> tuple[object, ...]:
    return (conn.our_state, conn.their_state, conn.keep_alive)


@given(
    st.sampled_from(REQUESTS),
    statuses,
    fields,
    bodies,
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_respond_fields_is_respond_with_the_fields_added(
    wire: bytes,
    status: int,
    given: list[tuple[bytes, bytes]],
    body: bytes,
    strip: bool,
    close: bool,
    declare: bool,
) -> None:
    short, _ = _connection(wire)
    long, _ = _connection(wire)
    headers = _long_way(given, strip, close)
    declared = _declared(long, status, headers, body) if declare else headers
    expected = _outcome(lambda: long.respond(Response(status, declared), body))
    got = _outcome(
        lambda: short.respond_fields(
            status,
            given,
            body,
            date=DATE[1],
            server=SERVER[1],
            close=close,
            strip_transfer_encoding=strip,
            declare_length=declare,
        )
    )
    assert got == expected
    assert _state(short) == _state(long)


def _declared(
    conn: ServerConnection, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``Content-Length: len(body)`` where a body known whole declares it."""
    if (
        conn._reader.head_request
        or status in (204, 304)
        or any(n.lower() == b"content-length" for n, _ in headers)
    ):
        return headers
    return [*headers, (b"content-length", b"%d" % len(body))]


@given(st.sampled_from(REQUESTS[:4]), statuses, fields, bodies, st.booleans(), st.booleans())
def test_a_whole_response_through_the_cycle_is_the_long_way(
    wire: bytes,
    status: int,
    given: list[tuple[bytes, bytes]],
    body: bytes,
    strip: bool,
    closing: bool,
) -> None:
    """ResponseCycle's one-write path against the event the cycle used to build."""
    short_conn, request = _connection(wire)
    long_conn, _ = _connection(wire)
    cycle = ResponseCycle(short_conn, request, "-", date=DATE, server=SERVER, closing=closing)
    headers = _long_way(given, strip, closing)

    def whole() -> bytes:
        cycle.start(status, list(given), ignore_transfer_encoding=strip)
        return cycle.body(body)

    got = _outcome(whole)
    expected = _outcome(lambda: long_conn.respond(Response(status, headers), body))
    assert got == expected
    assert _state(short_conn) == _state(long_conn)
    if got is LocalProtocolError:
        assert not cycle.committed  # the server can still answer 500
    else:
        assert cycle.complete and cycle.sent == len(body) and cycle.status == status
        assert list(cycle.response_headers) == headers


def test_a_failed_whole_response_still_becomes_a_500() -> None:
    conn, request = _connection(REQUESTS[0])
    cycle = ResponseCycle(conn, request, "-", date=DATE, server=SERVER)
    cycle.start(200, [(b"content-length", b"5")])
    try:
        cycle.body(b"abc")
    except LocalProtocolError:
        pass
    else:  # pragma: no cover - the body is shorter than declared
        raise AssertionError("a short body was sent")
    assert not cycle.committed
    out = cycle.fail()
    assert out is not None and out.startswith(b"HTTP/1.1 500 ")
    assert b"connection: close" in out and not conn.keep_alive


def test_the_application_changing_its_list_after_start_changes_nothing() -> None:
    conn, request = _connection(REQUESTS[0])
    cycle = ResponseCycle(conn, request, "-", date=None, server=None)
    headers = [(b"content-length", b"2")]
    cycle.start(200, headers)
    headers.append((b"x-late", b"1"))
    out = cycle.body(b"ok")
    assert b"x-late" not in out and out.endswith(b"\r\n\r\nok")
    assert cycle.response_headers == [(b"content-length", b"2")]


def test_streamed_after_a_whole_response_stays_the_general_path() -> None:
    conn, request = _connection(REQUESTS[0])
    cycle = ResponseCycle(conn, request, "-", date=DATE, server=None)
    cycle.start(200, [(b"content-type", b"text/plain")])
    out = cycle.body(b"ab", True) + cycle.body(b"c")
    assert out.startswith(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ndate: ")
    assert b"transfer-encoding: chunked" in out and out.endswith(b"0\r\n\r\n")
    assert cycle.complete and conn.our_state is State.DONE
    assert type(conn.next_event()) is EndOfMessage
