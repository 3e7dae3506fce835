"""Pipelined requests: a complete request waits for a client that does not read its answers."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from threaded_helpers import connect, read_until_closed, running, wait_for

from tether_threaded._transport import OUT_HIGH

Environ = dict[str, Any]
#: Larger than what the kernel's buffers take, so the server's own queue passes OUT_HIGH.
SIZE = 16 * 1024 * 1024


def test_a_request_is_held_until_the_client_reads_then_every_answer_comes_in_order() -> None:
    """The client sends three requests at once and reads nothing: the first answer fills the
    server's output queue past OUT_HIGH, so the second request, though complete, is held (no
    worker waits on the client). Once the client reads, the rest are answered, in order."""
    paths: list[str] = []

    def app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        paths.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Length", str(SIZE))])
        return [environ["PATH_INFO"].encode().ljust(SIZE, b".")]

    with running(app) as server:
        sock = connect(server)
        sock.sendall(
            b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        loop = server._loop
        assert loop is not None
        assert wait_for(lambda: any(conn.held for conn in list(loop.conns)))
        (conn,) = list(loop.conns)
        assert len(conn.outbuf) > OUT_HIGH
        assert paths == ["/1"]  # the held request has not reached the application
        received = read_until_closed(sock, limit=4 * SIZE)
    assert paths == ["/1", "/2", "/3"]
    heads = re.findall(rb"HTTP/1\.1 200 OK\r\n.*?\r\n\r\n(/\d)", received, re.DOTALL)
    assert heads == [b"/1", b"/2", b"/3"]
    assert len(received) > 3 * SIZE
