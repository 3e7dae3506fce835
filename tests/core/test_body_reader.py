"""The body readers on their own, as a client role reads a response body with them."""

from __future__ import annotations

import pytest

from tether.errors import ContentTooLarge, IncompleteMessage
from tether.http1 import NEED_DATA, Data, EndOfMessage
from tether.http1._body import BodyReader
from tether.http1._tables import Phase
from tether.limits import Limits


def drain(reader: BodyReader, pieces: list[bytes], eof: bool) -> tuple[bytes, EndOfMessage | None]:
    body = b""
    for piece in [*pieces, b""] if eof else pieces:
        if piece:
            reader.feed(piece)
        else:
            reader.eof = True
        while True:
            event = reader.read_body()
            if event is NEED_DATA:
                break
            if isinstance(event, EndOfMessage):
                return body, event
            assert isinstance(event, Data)
            body += event.data
    return body, None


def test_fixed_length_byte_by_byte() -> None:
    reader = BodyReader(Limits())
    reader.phase = Phase.FIXED
    reader.remaining = 5
    body, end = drain(reader, [b"h", b"e", b"l", b"l", b"o"], eof=False)
    assert (body, end) == (b"hello", EndOfMessage())
    assert reader.phase is Phase.DONE


def test_fixed_length_leaves_the_next_message_buffered() -> None:
    reader = BodyReader(Limits())
    reader.phase = Phase.FIXED
    reader.remaining = 5
    body, end = drain(reader, [b"helloHTTP/1.1 200 OK\r\n"], eof=False)
    assert (body, end) == (b"hello", EndOfMessage())
    assert reader.buffered() == len(b"HTTP/1.1 200 OK\r\n")


def test_chunked_with_trailers_whole_and_split() -> None:
    wire = b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nEtag: 1\r\n\r\n"
    for pieces in ([wire], [wire[i : i + 1] for i in range(len(wire))]):
        reader = BodyReader(Limits())
        reader.phase = Phase.CHUNK_LINE
        body, end = drain(reader, pieces, eof=False)
        assert body == b"abcde"
        assert end == EndOfMessage([(b"etag", b"1")])


def test_until_close_ends_at_eof() -> None:
    reader = BodyReader(Limits())
    reader.phase = Phase.UNTIL_CLOSE
    body, end = drain(reader, [b"some ", b"bytes"], eof=True)
    assert (body, end) == (b"some bytes", EndOfMessage())
    assert reader.phase is Phase.DONE


def test_until_close_has_a_size_limit() -> None:
    reader = BodyReader(Limits(max_body_size=4))
    reader.phase = Phase.UNTIL_CLOSE
    with pytest.raises(ContentTooLarge):
        drain(reader, [b"abc", b"de"], eof=True)


def test_fixed_length_cut_short_is_incomplete() -> None:
    reader = BodyReader(Limits())
    reader.phase = Phase.FIXED
    reader.remaining = 5
    with pytest.raises(IncompleteMessage):
        drain(reader, [b"hel"], eof=True)
