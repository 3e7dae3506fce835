"""Header fields given as any pair, the way applications give them, in both builds of the core.

ASGI lets an application give each header field as any two-item iterable of byte strings (a
list, often) and the headers as any iterable (a tuple, often); PEP 3333 asks WSGI applications
for tuples, and servers have always taken lists as well. Pure Python takes all of these by
duck typing; the core compiled by mypyc checks declared types, so :class:`ResponseCycle` and
the WSGI ``start_response`` turn what they are given into tuples first. ``test_mypyc.py`` runs
this file against the compiled build too.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

import tether.http1._connection
from tether.http1 import ServerConnection
from tether.serving_cycle import ResponseCycle
from tether.serving_wsgi import start_response

GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
DATE = (b"date", b"Thu, 03 Dec 2026 07:00:00 GMT")


def test_the_build_is_the_one_asked_for() -> None:
    """``test_mypyc.py`` sets TETHER_EXPECT_COMPILED when it runs this file on its build."""
    compiled = not str(tether.http1._connection.__file__).endswith(".py")
    assert compiled == bool(os.environ.get("TETHER_EXPECT_COMPILED"))


def _cycle() -> ResponseCycle:
    conn = ServerConnection(now=0.0)
    conn.receive_data(GET, 0.0)
    request = conn.next_event(0.0)
    conn.next_event(0.0)
    return ResponseCycle(conn, request, "-", date=DATE, server=None)  # type: ignore[arg-type]


SHAPES: list[Any] = [
    [(b"content-type", b"text/plain"), (b"x-id", b"7")],  # what the type says
    [[b"content-type", b"text/plain"], [b"x-id", b"7"]],  # ASGI: lists
    ((b"content-type", b"text/plain"), [b"x-id", b"7"]),  # a tuple, mixed pairs
]


@pytest.mark.parametrize("headers", SHAPES)
def test_a_whole_response_takes_any_pairs(headers: Any) -> None:
    cycle = _cycle()
    cycle.start(200, headers)
    out = cycle.body(b"ok", whole=True)
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\ncontent-type: text/plain\r\nx-id: 7\r\n" in out and out.endswith(b"\r\n\r\nok")
    given = [tuple(pair) for pair in cycle.response_headers[:2]]
    assert given == [(b"content-type", b"text/plain"), (b"x-id", b"7")]


@pytest.mark.parametrize("headers", SHAPES)
def test_a_streamed_response_with_trailers_takes_any_pairs(headers: Any) -> None:
    cycle = _cycle()
    cycle.start(200, headers, trailers=True)
    out = cycle.body(b"ab", True) + cycle.end([[b"x-sum", b"1"]])
    assert b"\r\ntransfer-encoding: chunked\r\n" in out
    assert out.endswith(b"2\r\nab\r\n0\r\nx-sum: 1\r\n\r\n")


def test_no_headers_at_all_as_an_empty_tuple() -> None:
    cycle = _cycle()
    cycle.start(204, ())
    assert cycle.end().startswith(b"HTTP/1.1 204 No Content\r\n")


@pytest.mark.parametrize("pair", [("Content-Type", "text/plain"), ["Content-Type", "text/plain"]])
def test_wsgi_start_response_takes_a_tuple_or_a_list(pair: Any) -> None:
    cycle = _cycle()
    start_response(cycle, "200 OK", [pair])
    assert cycle.body(b"", whole=True).startswith(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain")


def test_a_pair_that_is_not_two_byte_strings_is_refused_alike() -> None:
    """Not a pair of byte strings: the same typed error in both builds (the server answers
    500), never a crash of another kind."""
    from tether.errors import LocalProtocolError

    cycle = _cycle()
    cycle.start(200, [[b"x-a", "text"]])
    with pytest.raises(LocalProtocolError, match="bytes"):
        cycle.body(b"", whole=True)
    assert not cycle.committed
