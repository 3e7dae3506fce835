"""WSGI early hints: ``environ["tether.early_hints"](links)`` sends ``103 Early Hints``
(RFC 8297) before the response, to HTTP/1.1 clients only (RFC 9110 15.2), seen on a raw socket."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from threaded_helpers import connect, read_until_closed, running

from tether.errors import LocalProtocolError

LINKS = ["</style.css>; rel=preload; as=style", "</app.js>; rel=preload; as=script"]


def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    environ["tether.early_hints"](LINKS)
    start_response("200 OK", [("Content-Length", "2"), ("Connection", "close")])
    return [b"ok"]


def test_103_before_the_response() -> None:
    with running(app) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_until_closed(sock)
    interim, _, final = data.partition(b"\r\n\r\n")
    lines = interim.split(b"\r\n")
    assert lines[0].startswith(b"HTTP/1.1 103 ")
    assert [line.partition(b":")[0].lower() for line in lines[1:]] == [b"link", b"link"]
    assert [line.partition(b":")[2].strip().decode() for line in lines[1:]] == LINKS
    assert final.startswith(b"HTTP/1.1 200 ") and final.endswith(b"\r\n\r\nok")


def test_no_103_for_http_1_0() -> None:
    with running(app) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200 ") and b" 103 " not in data


def test_a_link_with_a_line_break_is_refused_not_sent() -> None:
    def splitting(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        try:
            environ["tether.early_hints"](["</a>\r\nSet-Cookie: evil=1"])
        except LocalProtocolError as exc:  # the core refuses the field
            body = type(exc).__name__.encode()
        else:
            body = b"sent"
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    with running(splitting) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = read_until_closed(sock)
    assert b"evil" not in data and data.endswith(b"LocalProtocolError")


def test_after_start_response_is_an_error() -> None:
    seen: list[str] = []

    def too_late(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Length", "2")])
        try:
            environ["tether.early_hints"](LINKS)
        except AssertionError as exc:
            seen.append(str(exc))
        return [b"ok"]

    with running(too_late) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200 ") and b" 103 " not in data
    assert seen and "before start_response" in seen[0]
