"""tether.serving: the pure helpers both servers share."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.errors import BadRequest
from tether.http1 import Request
from tether.limits import Limits
from tether.serving import (
    UNSET,
    ConnectionGate,
    access_log_line,
    decode_path,
    internal_error_response,
    overload_response,
    server_limits,
    split_target,
    unquote_path,
    with_server_headers,
)

DATE = (b"date", b"Sun, 06 Nov 1994 08:49:37 GMT")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (b"/", (b"/", b"")),
        (b"/a/b?x=1&y", (b"/a/b", b"x=1&y")),
        (b"/a?b?c", (b"/a", b"b?c")),
        (b"*", (b"*", b"")),
        (b"http://example.org", (b"/", b"")),
        (b"http://example.org?q", (b"/", b"q")),
        (b"HTTPS://example.org:8443/p/q?z=1", (b"/p/q", b"z=1")),
        (b"example.org:443", (b"example.org:443", b"")),
    ],
)
def test_rfc9112_3_2_target_forms(target: bytes, expected: tuple[bytes, bytes]) -> None:
    assert split_target(target) == expected


def test_decode_path() -> None:
    assert decode_path(b"/a%20b/%C3%A9") == "/a b/é"
    assert unquote_path(b"/%2F%25") == b"//%"
    assert decode_path(b"/plain") == "/plain"


@pytest.mark.parametrize("raw", [b"/%", b"/%2", b"/%zz", b"/a%g1"])
def test_rfc3986_2_1_malformed_percent_encoding_is_400(raw: bytes) -> None:
    """RFC 3986 2.1: pct-encoded = "%" HEXDIG HEXDIG."""
    with pytest.raises(BadRequest) as info:
        unquote_path(raw)
    assert info.value.status_hint == 400


def test_path_that_is_not_utf8_is_400() -> None:
    with pytest.raises(BadRequest):
        decode_path(b"/%FF")


@given(st.binary(max_size=64))
def test_decode_path_gives_text_or_bad_request(raw: bytes) -> None:
    try:
        path = decode_path(raw)
    except BadRequest:
        return
    assert isinstance(path, str)


@given(st.text(max_size=40))
def test_percent_encoding_round_trips(text: str) -> None:
    encoded = "".join(f"%{b:02X}" for b in text.encode("utf-8")).encode("ascii")
    assert decode_path(encoded) == text


def test_with_server_headers() -> None:
    app = [(b"content-type", b"text/plain")]
    assert with_server_headers(app, DATE) == [*app, DATE, (b"server", b"tether")]
    own = [(b"Date", b"x"), (b"SERVER", b"mine")]
    assert with_server_headers(own, DATE) == own
    assert with_server_headers(app, None, None) == app


def test_canned_responses() -> None:
    response, body = overload_response(7)
    assert response.status_code == 503
    assert (b"retry-after", b"7") in response.headers
    assert (b"connection", b"close") in response.headers
    assert (b"content-length", str(len(body)).encode()) in response.headers
    response, body = internal_error_response()
    assert response.status_code == 500
    assert (b"connection", b"close") in response.headers


def test_server_limits() -> None:
    limits = server_limits(timeout_keep_alive=1.5, ws_ping_interval=None, max_body_size=10)
    assert limits.keep_alive_timeout == 1.5
    assert limits.ws_ping_interval is None
    assert limits.max_body_size == 10
    base = Limits(ws_ping_interval=3.0)
    assert server_limits(base, ws_ping_interval=UNSET) is base


def test_connection_gate_hysteresis() -> None:
    gate = ConnectionGate(3, 1)
    assert [gate.opened() for _ in range(3)] == [False, False, True]
    assert not gate.accepting
    assert gate.closed() is False  # 2 open: above the low mark
    assert gate.closed() is True  # 1 open: resume
    assert gate.accepting
    unlimited = ConnectionGate(None)
    assert not any(unlimited.opened() for _ in range(1000))
    with pytest.raises(ValueError):
        ConnectionGate(2, 2)


def test_access_log_line() -> None:
    request = Request(b"GET", b"/a?\xff", [], b"1.1")
    assert access_log_line("1.2.3.4:5", request, 200, 13) == (
        '1.2.3.4:5 - "GET /a?\\xff HTTP/1.1" 200 13'
    )
