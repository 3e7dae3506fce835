"""``Connection.received_size``: the payload bytes of the last message events() yielded (a text
message's UTF-8 length, not its characters), on every receive path, and the session's inbox
bound counted with it. Fed whole, byte by byte and split anywhere."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from tether import websocket as ws
from tether.serving_websocket import WebSocketSession

DEFLATE = ws.DeflateOptions()


def _pair(deflate: bool) -> tuple[ws.Connection, ws.Connection]:
    options = DEFLATE if deflate else None
    client = ws.Connection(ws.Role.CLIENT, now=0.0, mask_source=os.urandom, deflate=options)
    server = ws.Connection(ws.Role.SERVER, now=0.0, deflate=options)
    return client, server


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]
    return [piece for piece in pieces if piece]  # b"" would be the peer's EOF


def _sizes(pieces: list[bytes], server: ws.Connection) -> list[tuple[str | bytes, int]]:
    seen = []
    for piece in pieces:
        server.receive_data(piece, 0.0)
        for event in server.events():
            if isinstance(event, (ws.Text, ws.Binary)):
                seen.append((event.data, server.received_size))
    return seen


_texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.one_of(_texts, st.binary(max_size=300)), min_size=1, max_size=5),
    st.booleans(),
    st.booleans(),
    st.lists(st.integers(0, 100_000), max_size=6),
)
def test_received_size_is_the_payload_length(
    messages: list[str | bytes], deflate: bool, fragment: bool, cuts: list[int]
) -> None:
    client, _ = _pair(deflate)
    for data in messages:
        if fragment and len(data) > 1:
            half = len(data) // 2
            kind = ws.Text if isinstance(data, str) else ws.Binary
            client.send(kind(data[:half], fin=False), 0.0)  # type: ignore[arg-type]
            client.send(kind(data[half:], fin=True), 0.0)  # type: ignore[arg-type]
        else:
            client.send(ws.Text(data) if isinstance(data, str) else ws.Binary(data), 0.0)
    stream = client.bytes_to_send()
    expected = [(d, len(d.encode()) if isinstance(d, str) else len(d)) for d in messages]
    for pieces in ([stream], [stream[i : i + 1] for i in range(len(stream))], _split(stream, cuts)):
        assert _sizes(pieces, _pair(deflate)[1]) == expected


def test_the_inbox_counts_utf8_bytes() -> None:
    client, server = _pair(False)
    session = WebSocketSession(server)
    for text in ("\U0001f600" * 10, "é" * 200, "a" * 3):  # fast path, full path, fast path
        client.send(ws.Text(text), 0.0)
    client.send(ws.Binary(b"xy"), 0.0)
    server.receive_data(client.bytes_to_send(), 0.0)
    assert session.take_events()
    assert session.inbox_size == 40 + 400 + 3 + 2
    assert session.take() == "\U0001f600" * 10
    assert session.inbox_size == 400 + 3 + 2
    session.take()
    session.take()
    assert session.inbox_size == 2
    session.app_returned()
    assert session.inbox_size == 0
