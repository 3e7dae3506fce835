"""tether_server.wsgi_body: a request body gathered whole, in memory then spooled, capped."""

from __future__ import annotations

import io

import pytest

from tether.errors import ContentTooLarge
from tether_server.wsgi_body import SPOOL_AT, BodyBuffer


def test_a_small_body_stays_in_memory_and_reads_whole() -> None:
    body = BodyBuffer(None)
    body.feed(b"hello, ")
    body.feed(b"world")
    assert body.file is None
    assert body.size == 12
    stream = body.stream()
    assert isinstance(stream, io.BytesIO)
    assert stream.read() == b"hello, world"


def test_a_body_past_spool_at_goes_to_a_file_positioned_at_its_start() -> None:
    body = BodyBuffer(None)
    piece = b"x" * (SPOOL_AT // 2 + 1)
    body.feed(piece)
    assert body.file is None
    body.feed(piece)
    body.feed(b"end")
    assert body.file is not None
    assert body.chunks == []  # nothing kept twice
    stream = body.stream()
    try:
        assert stream.read() == piece + piece + b"end"
    finally:
        stream.close()


def test_the_cap_is_checked_as_each_piece_arrives() -> None:
    body = BodyBuffer(10)
    body.feed(b"0123456789")
    with pytest.raises(ContentTooLarge, match="exceeds 10 bytes"):
        body.feed(b"!")


def test_discard_closes_the_spool_file() -> None:
    body = BodyBuffer(None)
    body.feed(b"x" * (SPOOL_AT + 1))
    spool = body.file
    assert spool is not None
    body.discard()
    assert spool.closed
    assert body.file is None
