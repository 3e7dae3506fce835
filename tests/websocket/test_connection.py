"""The connection's closing handshake, deadlines, flow control, sending rules and deflate."""

from __future__ import annotations

import zlib

import pytest
from _ws_helpers import PROPERTY, feed, fixed_masks, merge, read_frame, split
from hypothesis import given
from hypothesis import strategies as st

from tether import websocket as ws
from tether.limits import Limits


def pair(
    deflate: ws.DeflateParams | None = None,
    limits: Limits | None = None,
    now: float | None = None,
) -> tuple[ws.Connection, ws.Connection]:
    server = ws.Connection(ws.Role.SERVER, deflate=deflate, limits=limits, now=now)
    client = ws.Connection(
        ws.Role.CLIENT, deflate=deflate, limits=limits, mask_source=fixed_masks, now=now
    )
    return server, client


def pump(src: ws.Connection, dst: ws.Connection) -> list[ws.Event]:
    data = src.bytes_to_send()
    return feed(dst, [data]) if data else []


# ---- closing handshake (RFC 6455 section 7) ---------------------------------------------------


def test_server_initiated_close() -> None:
    """RFC 6455 7.1.1: "the server SHOULD close [the TCP connection] first"; the client waits."""
    server, client = pair(now=0.0)
    server.send(ws.Close(1001, "going away"), now=0.0)
    assert server.state is ws.State.CLOSING
    assert not server.should_close_tcp
    assert pump(server, client) == [ws.Close(1001, "going away")]
    assert client.state is ws.State.CLOSED
    assert not client.should_close_tcp  # the client waits for the server's TCP close
    assert client.next_deadline() == (10.0, ws.Timer.CLOSE)
    assert pump(client, server) == [ws.Close(1001, "")]
    assert server.state is ws.State.CLOSED
    assert server.should_close_tcp
    assert server.next_deadline() is None
    client.receive_data(b"")  # the server closed TCP
    assert client.should_close_tcp
    assert list(client.events()) == []


def test_client_gives_up_waiting_for_the_server_tcp_close() -> None:
    """RFC 6455 7.1.1: the client may close TCP itself when the server does not in time."""
    server, client = pair(now=0.0)
    client.send(ws.Close(), now=1.0)
    pump(client, server)
    pump(server, client)
    assert client.state is ws.State.CLOSED and not client.should_close_tcp
    assert client.handle_timeout(5.0) is None  # spurious wakeup
    assert client.handle_timeout(11.0) is ws.Timer.CLOSE
    assert client.should_close_tcp


def test_close_timeout_when_the_peer_never_answers() -> None:
    server, _ = pair(now=0.0)
    server.send(ws.Close(1000), now=2.0)
    assert server.next_deadline() == (12.0, ws.Timer.CLOSE)
    assert server.handle_timeout(12.0) is ws.Timer.CLOSE
    assert server.state is ws.State.CLOSED
    assert server.should_close_tcp
    assert server.close_code == 1006


def test_close_without_status_is_answered_without_status() -> None:
    """RFC 6455 7.1.5: no status code received means 1005, which never goes on the wire."""
    server, client = pair()
    client.send(ws.Close(1005))
    assert pump(client, server) == [ws.Close(1005, "")]
    assert server.bytes_to_send() == b"\x88\x00"


def test_eof_before_close_is_connection_lost() -> None:
    """RFC 6455 7.1.5: the connection closed without a close frame is 1006, not a Close."""
    server, client = pair()
    client.send(ws.Text("partial", fin=False))
    pump(client, server)
    server.receive_data(b"")
    assert list(server.events()) == [ws.ConnectionLost()]
    assert server.close_code == 1006
    assert server.should_close_tcp
    with pytest.raises(ws.InvalidSend):
        server.send(ws.Text("late"))


def test_data_after_close_is_ignored_and_sending_is_refused() -> None:
    """RFC 6455 5.5.1: after sending a Close frame, an endpoint "MUST NOT send any more data frames"."""
    server, client = pair()
    client.send(ws.Close(1000))
    raw = client.bytes_to_send() + b"\x81\x80abcd"
    assert feed(server, [raw]) == [ws.Close(1000, "")]
    with pytest.raises(ws.InvalidSend):
        server.send(ws.Text("x"))
    with pytest.raises(ws.InvalidSend):
        server.send(ws.Close())


def test_failure_is_an_error_not_a_close() -> None:
    """A parse failure raises (with its close code) and is never reported as the peer's Close."""
    server = ws.Connection(ws.Role.SERVER)
    server.receive_data(b"\x81\x01x")  # unmasked
    with pytest.raises(ws.FrameError) as info:
        list(server.events())
    assert info.value.close_code == 1002
    assert server.close_code == 1002
    assert read_frame(server.bytes_to_send())[:2] == (
        0x88,
        b"\x03\xea" + info.value.message.encode()[:123],
    )
    assert list(server.events()) == []


# ---- deadlines ----------------------------------------------------------------------------


def test_ping_interval_and_pong_timeout() -> None:
    limits = Limits(ws_ping_interval=30.0, ws_ping_timeout=5.0)
    server, client = pair(limits=limits, now=100.0)
    assert server.next_deadline() == (130.0, ws.Timer.PING)
    assert server.handle_timeout(129.0) is None
    assert server.handle_timeout(130.0) is ws.Timer.PING
    assert server.next_deadline() == (135.0, ws.Timer.PONG)
    events = pump(server, client)
    assert isinstance(events[0], ws.Ping)
    assert pump(client, server) == [ws.Pong(events[0].payload)]  # answered automatically
    assert server.next_deadline() == (160.0, ws.Timer.PING)
    assert server.handle_timeout(160.0) is ws.Timer.PING
    server.bytes_to_send()  # the pong never comes
    assert server.handle_timeout(165.0) is ws.Timer.PONG
    assert server.state is ws.State.CLOSED and server.should_close_tcp
    assert server.close_code == 1011
    assert read_frame(server.bytes_to_send())[1][:2] == (1011).to_bytes(2, "big")


def test_ping_timer_armed_from_the_first_time_known() -> None:
    server = ws.Connection(ws.Role.SERVER, limits=Limits(ws_ping_interval=1.0))
    assert server.next_deadline() is None
    server.receive_data(b"\x89\x80abcd", now=50.0)
    assert server.next_deadline() == (51.0, ws.Timer.PING)


# ---- flow control -------------------------------------------------------------------------


def test_write_water_marks() -> None:
    limits = Limits(ws_write_high_water=1000, ws_write_low_water=200)
    server = ws.Connection(ws.Role.SERVER, limits=limits)
    server.send(ws.Binary(b"x" * 900))
    assert server.pending_bytes == 904 and not server.write_paused
    server.send(ws.Binary(b"x" * 200))
    assert server.pending_bytes == 1108 and server.write_paused
    first = server.bytes_to_send(500)
    assert len(first) == 500 and server.pending_bytes == 608 and server.write_paused
    rest = server.bytes_to_send(408)
    assert server.pending_bytes == 200 and not server.write_paused
    assert first + rest + server.bytes_to_send() == (
        b"\x82\x7e\x03\x84" + b"x" * 900 + b"\x82\x7e\x00\xc8" + b"x" * 200
    )
    assert server.pending_bytes == 0


# ---- sending rules ------------------------------------------------------------------------


def test_send_rules() -> None:
    server = ws.Connection(ws.Role.SERVER)
    with pytest.raises(ws.InvalidSend):
        server.send(ws.Ping(b"x" * 126))
    for code in (999, 1004, 1005 + 1, 1015, 2999, 5000):
        with pytest.raises(ws.InvalidSend):
            server.send(ws.Close(code))
    with pytest.raises(ws.InvalidSend):
        server.send(ws.Close(1000, "é" * 62))  # 124 bytes of reason
    with pytest.raises(ws.InvalidSend):
        server.send(ws.Close(1005, "reason without a code"))
    server.send(ws.Text("ab", fin=False))
    with pytest.raises(ws.InvalidSend):
        server.send(ws.Binary(b"other type inside the message"))
    server.send(ws.Ping(b"between"))
    server.send(ws.Text("cd"))
    assert server.bytes_to_send() == b"\x01\x02ab\x89\x07between\x80\x02cd"
    assert ws.Connection(ws.Role.SERVER).state is ws.State.OPEN
    with pytest.raises(ws.LocalProtocolError, match="mask_source"):  # issue 18 (6)
        ws.Connection(ws.Role.CLIENT)


def test_minimal_length_encoding_on_send() -> None:
    """RFC 6455 5.2: "the minimal number of bytes MUST be used to encode the length"."""
    server = ws.Connection(ws.Role.SERVER, limits=Limits(ws_write_high_water=1 << 20))
    for size, header in (
        (125, b"\x82\x7d"),
        (126, b"\x82\x7e\x00\x7e"),
        (65535, b"\x82\x7e\xff\xff"),
        (65536, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    ):
        server.send(ws.Binary(b"\0" * size))
        assert server.bytes_to_send()[: len(header)] == header


def test_client_masks_with_the_callers_keys() -> None:
    """RFC 6455 5.3: the masking key comes from the caller's source, one per frame."""
    calls: list[int] = []

    def source(n: int) -> bytes:
        calls.append(n)
        return b"\x01\x02\x03\x04"

    client = ws.Connection(ws.Role.CLIENT, mask_source=source)
    client.send(ws.Text("Hello"))
    assert client.bytes_to_send() == b"\x81\x85\x01\x02\x03\x04" + bytes(
        b ^ k for b, k in zip(b"Hello", b"\x01\x02\x03\x04\x01", strict=True)
    )
    assert calls == [4]


# ---- limits -------------------------------------------------------------------------------


def test_message_limit_refused_before_payload_arrives() -> None:
    """The 1009 comes from the header alone: the oversized payload is never buffered."""
    server = ws.Connection(ws.Role.SERVER, limits=Limits(ws_max_message_size=1000))
    server.receive_data(b"\x82\xfe\x03\xe9abcd")  # a 1001-byte frame announced
    with pytest.raises(ws.MessageTooBig) as info:
        list(server.events())
    assert info.value.close_code == 1009


# ---- permessage-deflate -------------------------------------------------------------------

PARAMS = [
    ws.DeflateParams(),
    ws.DeflateParams(server_no_context_takeover=True, client_no_context_takeover=True),
    ws.DeflateParams(server_max_window_bits=9, client_max_window_bits=9),
    ws.DeflateParams(server_max_window_bits=12, client_no_context_takeover=True, level=1),
]


@pytest.mark.parametrize("params", PARAMS)
@PROPERTY
@given(st.lists(st.tuples(st.booleans(), st.text(max_size=300)), min_size=1, max_size=8))
def test_deflate_round_trip(params: ws.DeflateParams, messages: list[tuple[bool, str]]) -> None:
    server, client = pair(deflate=params)
    for as_text, text in messages:
        out: ws.Text | ws.Binary = ws.Text(text) if as_text else ws.Binary(text.encode())
        client.send(out)
        assert pump(client, server) == [out]
        server.send(out)
        assert pump(server, client) == [out]


def test_deflate_fragmented_send_and_rsv1_only_on_first_frame() -> None:
    """RFC 7692 6.1: RSV1 is set on the first frame of a compressed message only."""
    server, client = pair(deflate=ws.DeflateParams())
    server.send(ws.Text("hello ", fin=False))
    server.send(ws.Text("world"))
    data = server.bytes_to_send()
    first, _, rest = read_frame(data)
    second, _, _ = read_frame(rest)
    assert first == 0x41 and second == 0x80
    assert feed(client, [data]) == [ws.Text("hello world")]


def test_decompression_bomb_is_bounded() -> None:
    """A tiny frame inflating past ws_max_message_size fails with 1009 while inflating."""
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = bomb.compress(b"\0" * (16 << 20)) + bomb.flush(zlib.Z_SYNC_FLUSH)
    payload = payload[:-4]
    assert len(payload) < 65_536
    server = ws.Connection(
        ws.Role.SERVER, deflate=ws.DeflateParams(), limits=Limits(ws_max_message_size=1 << 20)
    )
    key = b"\x00\x00\x00\x00"
    header = b"\xc2\xfe" + len(payload).to_bytes(2, "big")
    server.receive_data(header + key + payload)
    with pytest.raises(ws.MessageTooBig) as info:
        list(server.events())
    assert info.value.close_code == 1009


def test_corrupt_deflate_data() -> None:
    server = ws.Connection(ws.Role.SERVER, deflate=ws.DeflateParams())
    server.receive_data(b"\xc1\x83\x00\x00\x00\x00\xff\xff\xff")
    with pytest.raises(ws.InvalidPayload) as info:
        list(server.events())
    assert info.value.close_code == 1007


def test_rsv1_on_control_frame_or_continuation_is_refused() -> None:
    """RFC 7692 6.1: the "Per-Message Compressed" bit is only for a message's first frame."""
    for raw in (b"\xc9\x80abcd", b"\x01\x80abcd\xc0\x80abcd"):
        server = ws.Connection(ws.Role.SERVER, deflate=ws.DeflateParams())
        server.receive_data(raw)
        with pytest.raises(ws.FrameError):
            list(server.events())


def test_uncompressed_message_on_a_deflate_connection() -> None:
    """RFC 7692 6: a message without RSV1 is not compressed, even when deflate was negotiated."""
    server = ws.Connection(ws.Role.SERVER, deflate=ws.DeflateParams())
    server.receive_data(b"\x81\x82\x00\x00\x00\x00hi")
    assert list(server.events()) == [ws.Text("hi")]


@pytest.mark.parametrize("params", PARAMS[:2])
@PROPERTY
@given(
    messages=st.lists(st.text(max_size=2000), min_size=1, max_size=5),
    fragment=st.integers(1, 700),
    points=st.lists(st.integers(0, 5000), max_size=8),
)
def test_deflate_split_invariance(
    params: ws.DeflateParams, messages: list[str], fragment: int, points: list[int]
) -> None:
    """Compressed, fragmented messages give the same events however the bytes are split."""
    _, client = pair(deflate=params)
    for text in messages:
        pieces = [text[i : i + fragment] for i in range(0, len(text), fragment)] or [""]
        for i, piece in enumerate(pieces):
            client.send(ws.Text(piece, fin=i == len(pieces) - 1))
    data = client.bytes_to_send()
    for stream in (False, True):
        server = ws.Connection(ws.Role.SERVER, deflate=params, stream=stream)
        assert merge(feed(server, split(data, points))) == [ws.Text(t) for t in messages]


def test_auto_pong_off_leaves_the_answer_to_the_caller() -> None:
    server = ws.Connection(ws.Role.SERVER, auto_pong=False)
    assert feed(server, [b"\x89\x82\x00\x00\x00\x00hi"]) == [ws.Ping(b"hi")]
    assert server.bytes_to_send() == b""
    server.send(ws.Pong(b"hi"))
    assert server.bytes_to_send() == b"\x8a\x02hi"


def test_stream_mode_yields_pieces_before_the_frame_ends() -> None:
    """Pieces of a large frame come out as they arrive, and text splits on characters."""
    _, client = pair()
    client.send(ws.Text("é" * 1000))  # 2000 bytes in one frame
    data = client.bytes_to_send()
    server = ws.Connection(ws.Role.SERVER, stream=True)
    first = feed(server, [data[:1001]])  # header (4 + 4 bytes) and 993 payload bytes
    assert first == [ws.Text("é" * 496, fin=False)]  # the odd byte waits for its partner
    rest = feed(server, [data[1001:]])
    assert rest == [ws.Text("é" * 504, fin=True)]


def test_invalid_utf8_fails_before_the_frame_ends() -> None:
    """RFC 6455 8.1: invalid text fails as soon as it is seen, not at the end of the frame."""
    server = ws.Connection(ws.Role.SERVER)
    payload = b"ok" + b"\xff" + b"x" * 500
    frame = b"\x81\xfe" + len(payload).to_bytes(2, "big") + b"\x00\x00\x00\x00" + payload
    server.receive_data(frame[:20])
    with pytest.raises(ws.InvalidPayload):
        list(server.events())
