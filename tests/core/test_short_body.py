"""``tether.errors.ShortBody``: a message that ends before its Content-Length, one type everywhere.

Servers tell a response cut short (a file that shrank under a download) from an application's
bug by this type alone, so every place that refuses a short body raises it: the server
connection's ``send(EndOfMessage())``, the response cycle, and the client's request.
:func:`tether.errors.cut_short` finds it under the wrappers frameworks add.
"""

from __future__ import annotations

import builtins

import pytest

from tether.errors import LocalProtocolError, ShortBody, cut_short
from tether.http1 import ClientConnection, Data, EndOfMessage, Request, Response, ServerConnection
from tether.serving_cycle import ResponseCycle

_DECLARED = [(b"content-length", b"10")]


def _request(conn: ServerConnection) -> Request:
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    request = conn.next_event()
    assert type(request) is Request
    return request


def _server() -> ServerConnection:
    conn = ServerConnection()
    _request(conn)
    return conn


def test_the_server_connection_refuses_a_short_body_as_short_body() -> None:
    conn = _server()
    conn.send(Response(200, _DECLARED))
    conn.send(Data(b"abc"))
    with pytest.raises(ShortBody, match="7 bytes shorter"):
        conn.send(EndOfMessage())


def test_the_response_cycle_refuses_a_short_body_as_short_body() -> None:
    conn = ServerConnection()
    cycle = ResponseCycle(conn, _request(conn), "-", date=None, server=None)
    cycle.start(200, _DECLARED)
    cycle.body(b"abc", True)
    with pytest.raises(ShortBody, match="7 bytes shorter"):
        cycle.body(b"", False)


def test_the_client_refuses_a_short_request_body_as_short_body() -> None:
    conn = ClientConnection()
    conn.send(Request(b"POST", b"/", [(b"host", b"a"), *_DECLARED]))
    with pytest.raises(ShortBody):
        conn.send(EndOfMessage())


def test_a_long_body_is_not_a_short_one() -> None:
    conn = _server()
    conn.send(Response(200, _DECLARED))
    with pytest.raises(LocalProtocolError) as caught:
        conn.send(Data(b"x" * 11))
    assert not isinstance(caught.value, ShortBody)


def test_cut_short_finds_it_under_wrappers() -> None:
    short = ShortBody("cut")
    assert cut_short(short) is short
    assert cut_short(None) is None
    assert cut_short(RuntimeError("other")) is None
    # Raised while handling it (a framework's own error), from it, or in a group.
    try:
        try:
            raise short
        except ShortBody:
            raise RuntimeError("wrapped") from None  # suppressed context still links it
    except RuntimeError as wrapped:
        assert cut_short(wrapped) is short
    caused = ValueError("framework")
    caused.__cause__ = short
    assert cut_short(caused) is short
    group_type = getattr(builtins, "ExceptionGroup", None)
    if group_type is not None:  # Python 3.11+
        group = group_type("tasks", [ValueError("other"), caused])
        assert cut_short(group) is short
    # The search is bounded: a chain deeper than a few wrappers is not followed.
    deep: BaseException = short
    for depth in range(6):
        outer = RuntimeError(f"layer {depth}")
        outer.__cause__ = deep
        deep = outer
    assert cut_short(deep) is None
