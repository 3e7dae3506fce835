"""``--limit-spool``: the bytes of gathered request bodies on disk at once, over all requests.

``tether-threaded`` gathers each body before the application runs, spooling past 256 KiB to a
temporary file (waitress's model). Each body is capped (``--limit-request-body``, 1 GiB by
default), but without a bound over all of them, enough clients uploading at once could fill the
disk. Real sockets, a real server; the test waits on the server's own count of spooled bytes,
never on a sleep.
"""

from __future__ import annotations

import socket
from typing import Any

from tests.server_threaded.threaded_helpers import (
    connect,
    read_until_closed,
    running,
    wait_for,
)
from tether_threaded._cli import build_parser, config_from_args

LIMIT = 1_000_000


def _length_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(len(body)).encode()]


def _head(length: int, close: bool = True) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    return b"POST /up HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n" % (extra, length)


def _upload(sock: socket.socket, length: int) -> bytes:
    sock.sendall(_head(length) + b"u" * length)
    return read_until_closed(sock)


def test_an_upload_past_the_spool_limit_gets_413_with_retry_after_and_the_share_comes_back() -> (
    None
):
    with running(_length_app, limit_spool=LIMIT) as server:
        spool = server._loop.spool  # type: ignore[union-attr]
        # A: a large upload, most of it sent, held open: its spool file holds 700 kB.
        first = connect(server)
        first.sendall(_head(900_000) + b"a" * 700_000)
        assert wait_for(lambda: spool.used >= 700_000)
        # B: another upload that would take the spool past 1 MB: refused, and told to retry.
        refused = _upload(connect(server), 600_000)
        head = refused.partition(b"\r\n\r\n")[0].lower()
        assert head.startswith(b"http/1.1 413 "), refused[:200]
        assert b"\r\nretry-after: " in head
        assert b"\r\nconnection: close" in head
        # B's own share went back when it was refused: only A's bytes are counted.
        assert wait_for(lambda: spool.used == 700_000), spool.used
        # A finishes: its request runs whole, and after its response its share goes back.
        first.sendall(b"a" * 200_000)
        answer = read_until_closed(first)
        assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"900000"), answer[:200]
        assert wait_for(lambda: spool.used == 0), spool.used
        # C: the same upload B sent is taken now.
        accepted = _upload(connect(server), 600_000)
        assert accepted.startswith(b"HTTP/1.1 200 ") and accepted.endswith(b"600000")
        assert wait_for(lambda: spool.used == 0), spool.used


def test_a_client_that_leaves_mid_upload_gives_its_share_back() -> None:
    with running(_length_app, limit_spool=LIMIT) as server:
        spool = server._loop.spool  # type: ignore[union-attr]
        with connect(server) as sock:
            sock.sendall(_head(900_000) + b"a" * 800_000)
            assert wait_for(lambda: spool.used >= 800_000)
        assert wait_for(lambda: spool.used == 0), spool.used
        assert _upload(connect(server), 900_000).endswith(b"900000")


def test_bodies_held_in_memory_take_nothing_from_the_spool() -> None:
    with running(_length_app, limit_spool=1) as server:
        # 200 kB stays in memory (spooling starts past 256 KiB): the limit does not apply.
        assert _upload(connect(server), 200_000).endswith(b"200000")


def test_the_option() -> None:
    parse = build_parser().parse_args
    assert config_from_args(parse(["app:app"])).limit_spool == 4 << 30
    assert config_from_args(parse(["app:app", "--limit-spool", "5000"])).limit_spool == 5000
    assert config_from_args(parse(["app:app", "--limit-spool", "none"])).limit_spool is None
