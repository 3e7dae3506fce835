"""``--request-body stream``: the application reads the request body as it arrives (gunicorn's
way), with the loop's buffer bounded; the default stays waitress's (gathered whole).

Every test talks to a real server over a real socket on 127.0.0.1.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from threaded_helpers import connect, read_until_closed, running

StartResponse = Callable[..., Callable[[bytes], None]]


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _recv_until(sock: socket.socket, marker: bytes) -> bytes:
    """Read until ``marker`` is in what came (the socket's timeout bounds the wait)."""
    data = b""
    while marker not in data:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return data


def _first_line_then_rest(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """Answers the body's first line before reading the rest (so it must see it early)."""
    body = environ["wsgi.input"]
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    first = body.readline()
    write(b"first:" + first)
    rest = body.read()
    keys = f"cl={environ.get('CONTENT_LENGTH')} term={environ['wsgi.input_terminated']}\n"
    return [b"rest:" + rest + b"\n", keys.encode()]


def test_the_app_reads_a_chunked_body_while_it_arrives() -> None:
    """The first line reaches the app, and its answer reaches the client, before the client
    has sent the rest: gathered bodies would wait for the last chunk (the read times out)."""
    with running(_first_line_then_rest, request_body="stream") as server, connect(server) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunk(b"hello\n")
        )
        head = _recv_until(sock, b"first:hello\n")
        assert b"first:hello\n" in head
        sock.sendall(_chunk(b"wor") + _chunk(b"ld") + b"0\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        reply = head + read_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"rest:world\n" in reply
    # A chunked body has no CONTENT_LENGTH when streamed; wsgi.input_terminated says it ends.
    assert b"cl=None term=True" in reply


def test_the_default_still_gathers_the_body() -> None:
    """Without the option the app sees a complete body with its CONTENT_LENGTH (waitress)."""
    with running(_first_line_then_rest) as server, connect(server) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
            b"\r\n" + _chunk(b"hello\n") + _chunk(b"world") + b"0\r\n\r\n"
        )
        reply = read_until_closed(sock)
    assert b"first:hello\n" in reply
    assert b"rest:world\n" in reply
    assert b"cl=11 term=True" in reply


def test_a_content_length_body_streams_and_keep_alive_goes_on() -> None:
    """A Content-Length body is streamed too, and the next request on the connection works."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        data = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Length", str(len(data) + 4))])
        return [b"got:" + data]

    with running(app, request_body="stream") as server, connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde")
        assert _recv_until(sock, b"got:abcde").endswith(b"got:abcde")
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nxyz"
        )
        assert read_until_closed(sock).endswith(b"got:xyz")


def test_an_unread_body_is_drained_or_ends_the_connection() -> None:
    """The app answers without reading: a small body is drained by the core and the
    connection serves the next request."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    with running(app, request_body="stream") as server, connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd")
        assert _recv_until(sock, b"ok").endswith(b"ok")
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_until_closed(sock).endswith(b"ok")


def test_the_loop_stops_reading_while_the_app_does_not() -> None:
    """Back-pressure: with an app that does not read yet, the server holds a bounded amount
    (the client's sends block long before 64 MiB); once the app reads, every byte arrives."""
    may_read = threading.Event()
    total = 64 * 1024 * 1024

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        may_read.wait(30)
        body = environ["wsgi.input"]
        size = 0
        while piece := body.read(65536):
            size += len(piece)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"size=%d" % size]

    with running(app, request_body="stream") as server, connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total)
        piece = b"x" * 65536
        sent = 0
        sock.settimeout(2)  # a bound on a blocked send, not synchronisation
        try:
            while sent < total:
                sent += sock.send(piece[: min(len(piece), total - sent)])
        except TimeoutError:
            pass
        # Kernel buffers on loopback take a few MiB; the server itself at most 256 KiB
        # plus one read.
        assert sent < total, "the server read the whole body while the app read nothing"
        assert sent < 16 * 1024 * 1024
        may_read.set()
        sock.settimeout(10)
        while sent < total:
            sent += sock.send(piece[: min(len(piece), total - sent)])
        sock.shutdown(socket.SHUT_WR)
        reply = read_until_closed(sock)
    assert reply.endswith(b"size=%d" % total)


class _WholeBodyReader:
    """A WSGI app that reads its whole body, noting whether that worked or what it raised."""

    def __init__(self) -> None:
        self.outcome: list[str] = []
        self.done = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            environ["wsgi.input"].read()
            self.outcome.append("read the whole body")
        except OSError as exc:
            self.outcome.append(type(exc).__name__)
            raise
        finally:
            self.done.set()
        start_response("200 OK", [])
        return [b""]


def test_a_client_gone_mid_body_is_an_error_in_the_app_not_an_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A body cut by the client raises in the app's read (a cut body must not read as a whole
    one), and the server logs no traceback for the client's doing."""
    reader = _WholeBodyReader()
    app, outcome, done = reader, reader.outcome, reader.done

    caplog.set_level(logging.INFO, logger="tether")
    with running(app, request_body="stream") as server, connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part")
        sock.close()
        assert done.wait(10)
    assert outcome == ["ClientDisconnected"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_stalled_body_ends_within_the_body_timeout() -> None:
    """A client that stops sending mid-body holds its worker only until the core's body
    timeout: the app's read then raises, and the connection is closed."""
    reader = _WholeBodyReader()
    app, outcome, done = reader, reader.outcome, reader.done

    with running(app, request_body="stream", timeout_body=0.5) as server, connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part")
        assert done.wait(10)
        reply = read_until_closed(sock)
    assert outcome == ["ClientDisconnected"]
    # Nothing was sent yet, so the core's 408 goes out before the close.
    assert reply.startswith(b"HTTP/1.1 408 ")
