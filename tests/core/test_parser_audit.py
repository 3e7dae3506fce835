"""An adversarial audit of the core's parsers: each test here failed before its fix.

Super-linear work is never timed. It is counted instead: bytes allocated while
feeding (``tracemalloc``: the peak above what was held before a call, which a
copy of everything held shows at once), or the steps of a backtracking matcher
run over ``re``'s own parse of a pattern (the engine behind ``re`` backtracks
the same way, and a pattern that needs a quadratic number of steps on a run of
separators costs seconds on one 8 KiB field line).
"""

from __future__ import annotations

import gzip
import re
import tracemalloc
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.regex_model import Backtracker
from tether import websocket as ws
from tether.coding import _ITEM_RE, DecodingLimits, make_decoder, parse_accept_encoding
from tether.conditional import (
    _LIST_ITEM_RE,
    ETag,
    Precondition,
    evaluate_preconditions,
    parse_etag_list,
)
from tether.errors import RemoteProtocolError
from tether.http1 import NEED_DATA, ServerConnection
from tether.http1._abnf import FIELD_BLOCK, FIELD_LINE, REQUEST_HEAD
from tether.limits import Limits
from tether.multipart import MultipartError, MultipartLimits, MultipartParser
from tether.ranges import _RANGE_SPEC_RE, evaluate_range, parse_range
from tether.urlencoded import Field, UrlencodedParser

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEY = b"\x00\x00\x00\x00"  # a zero mask leaves the payload readable in the test


# ---- counting helpers -------------------------------------------------------------------------


@contextmanager
def allocation_counter() -> Iterator[Callable[[Callable[[], object]], int]]:
    """``measure(call)`` runs ``call`` and returns the bytes it allocated above what was held."""
    tracemalloc.start()

    def measure(call: Callable[[], object]) -> int:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        call()
        return max(0, tracemalloc.get_traced_memory()[1] - before)

    try:
        yield measure
    finally:
        tracemalloc.stop()


# ---- list fields and field lines: a run of whitespace costs linear work -----------------------

# (pattern, bytes before the run of spaces, bytes after it): each text fails to match, the
# way a malformed list element or field line does, after the run.
BACKTRACKING: dict[str, tuple[re.Pattern[bytes], bytes, bytes]] = {
    "If-Match/If-None-Match element": (_LIST_ITEM_RE, b"", b"x"),
    "Range spec": (_RANGE_SPEC_RE, b"", b"x"),
    "Accept-Encoding element": (_ITEM_RE, b"", b"\x01"),
    "field line": (FIELD_LINE, b"X:", b"\x01\r\n"),
    "field block": (FIELD_BLOCK, b"X:", b"\x01\r\n"),
    "request head grammar": (REQUEST_HEAD, b"GET / HTTP/1.1\r\nX:", b"\x01\r\n"),
}


@pytest.mark.parametrize("name", list(BACKTRACKING))
def test_a_run_of_whitespace_is_matched_in_linear_steps(name: str) -> None:
    """Twice the run of spaces may cost about twice the steps, not four times.

    Before the fix the optional element sat between two ``[ \\t]*``, so a failing
    match tried every way to share the run between them: an 8 KiB If-None-Match,
    Range or Accept-Encoding value cost about a second of CPU, a header or trailer
    line of spaces a fifth of one.
    """
    pattern, before, after = BACKTRACKING[name]
    matcher = Backtracker(pattern)
    small = matcher.steps(before + b" " * 100 + after)
    large = matcher.steps(before + b" " * 200 + after)
    assert large < 3 * small, (small, large)


def test_the_step_counter_sees_quadratic_backtracking() -> None:
    """The counter itself: the textbook ambiguous pattern is quadratic, its fix linear."""
    ambiguous = Backtracker(re.compile(rb"[ \t]*(?:a)?[ \t]*(?:,|\Z)"))
    assert ambiguous.steps(b" " * 200 + b"x") > 3 * ambiguous.steps(b" " * 100 + b"x")
    fixed = Backtracker(re.compile(rb"[ \t]*(?:a[ \t]*)?(?:,|\Z)"))
    assert fixed.steps(b" " * 200 + b"x") < 3 * fixed.steps(b" " * 100 + b"x")


def test_long_whitespace_runs_keep_their_meaning() -> None:
    """The same values parse as before: whitespace around elements is OWS, a bad one fails."""
    run = b" \t" * 4000
    assert parse_etag_list(b'"a",' + run + b'W/"b"' + run + b"," + run) == [
        ETag(b"a"),
        ETag(b"b", weak=True),
    ]
    assert parse_etag_list(b'"a",' + run + b"x") is None
    assert parse_range(b"bytes=0-1," + run + b"5-" + run) is not None
    assert parse_range(b"bytes=0-1," + run + b"x") is None
    assert parse_accept_encoding(b"gzip," + run + b"br;q=0.5" + run) == {"gzip": 1.0, "br": 0.5}
    assert parse_accept_encoding(b"gzip," + run + b"\x01") is None
    headers = [(b"if-none-match", b'"a",' + run + b"x"), (b"range", b"bytes=0-1," + run + b"x")]
    assert evaluate_preconditions(b"GET", headers, etag=ETag(b"a")) is Precondition.PROCEED
    assert evaluate_range(b"GET", headers, length=10).status == 200
    assert FIELD_LINE.fullmatch(b"X:" + run + b"\r\n") is not None
    assert FIELD_LINE.findall(b"X:" + run + b"\r\nY: a b" + run + b"\r\n") == [
        (b"X", b""),
        (b"Y", b"a b"),
    ]


@pytest.mark.parametrize("where", ["header", "trailer"])
def test_a_field_line_of_spaces_then_a_control_byte_is_a_typed_error(where: str) -> None:
    head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
    bad = b"X:" + b" " * 8000 + b"\x01\r\n"
    data = head + bad + b"\r\n" if where == "header" else head + b"\r\n0\r\n" + bad + b"\r\n"
    conn = ServerConnection(Limits())
    conn.receive_data(data)
    with pytest.raises(RemoteProtocolError) as info:
        while conn.next_event() is not NEED_DATA:
            pass
    assert info.value.status_hint == 400


# ---- urlencoded: a long field fed in small pieces ---------------------------------------------


def test_urlencoded_long_field_in_tiny_pieces_is_not_copied_per_piece() -> None:
    """Each piece may allocate about its own size, not a copy of the whole held field.

    Before the fix the held field was concatenated with every piece: a 1 MiB field
    (the default ``max_field_size``) sent one byte per chunk cost about 50 s of CPU.
    """
    size = 20_000
    parser = UrlencodedParser()
    with allocation_counter() as measure:
        parser.feed(b"name=")
        total = sum(measure(lambda: parser.feed(b"x")) for _ in range(size))
    assert total < 200 * size, total  # a copy per piece: about size * size / 2
    assert parser.feed(b"&") == [Field("name", "x" * size)]


# ---- multipart: what a part's head or a boundary line may hold ----------------------------------


@pytest.mark.parametrize(
    ("prefix", "filler"),
    [
        (b"--B\r\nX-A: ", b"x"),  # one endless header line
        (b"--B\r\n" + b"X-A: b\r\n" * 3, b"y"),  # a header section that never ends
        (b"--B", b" "),  # transport padding after a delimiter
        (b"--B\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--B--", b"\t"),
    ],
)
def test_multipart_head_limit_is_hit_before_more_is_held(prefix: bytes, filler: bytes) -> None:
    """Fed byte by byte, the 413 comes within a few bytes of max_header_size: the parser
    never holds more than the limit while it waits for the end of a part head or line."""
    limit = 1000
    parser = MultipartParser(b"B", MultipartLimits(max_header_size=limit))
    fed = 0
    with pytest.raises(MultipartError) as info:
        for piece in [prefix[i : i + 1] for i in range(len(prefix))] + [filler] * (4 * limit):
            parser.feed(piece)
            fed += 1
    assert info.value.status_hint == 413
    assert fed <= len(prefix) + limit + 8, fed


# ---- gzip: many members in one piece ----------------------------------------------------------


def test_gzip_many_members_given_whole_are_not_copied_per_member() -> None:
    """At a member's end zlib copies the unread rest of what it was given; given the whole
    body, that copy is made once per member (quadratic: 4 MB of empty members took about
    50 s). The decoder now gives zlib bounded slices, so the copies stay small. (The default
    DecodingLimits.max_members refuses such a body at its 65th member; raised here to see
    the copies.)"""
    member = gzip.compress(b"")
    body = member * 40_000  # 800 kB
    decoder = make_decoder(b"gzip", DecodingLimits(max_members=40_000))
    assert decoder is not None
    with allocation_counter() as measure:
        extra = measure(lambda: decoder.decode(body))
    assert extra < len(body) // 4, extra
    assert decoder.finish() == b""


@SETTINGS
@given(
    texts=st.lists(st.binary(max_size=300), min_size=1, max_size=8),
    cuts=st.lists(st.integers(0, 3000), max_size=6),
)
def test_gzip_members_at_any_split(texts: list[bytes], cuts: list[int]) -> None:
    body = b"".join(gzip.compress(t) for t in texts)
    points = sorted({c for c in cuts if 0 < c < len(body)})
    decoder = make_decoder(b"gzip")
    assert decoder is not None
    out = b"".join(decoder.decode(body[a:b]) for a, b in zip([0, *points], [*points, len(body)]))
    assert out + decoder.finish() == b"".join(texts)


def test_deflate_data_after_the_stream_is_still_refused() -> None:
    body = zlib.compress(b"abc") + zlib.compress(b"def")
    for pieces in ([body], [body[i : i + 1] for i in range(len(body))]):
        decoder = make_decoder(b"deflate")
        assert decoder is not None
        with pytest.raises(RemoteProtocolError) as info:
            for piece in pieces:
                decoder.decode(piece)
            decoder.finish()
        assert info.value.status_hint == 400


# ---- WebSocket --------------------------------------------------------------------------------


def _masked_frame(b0: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((b0, 0x80 | n)) + KEY + payload
    return bytes((b0, 0xFE)) + n.to_bytes(2, "big") + KEY + payload


def _feed(conn: ws.Connection, data: bytes, points: Sequence[int] = ()) -> list[ws.Event]:
    cuts = sorted({p for p in points if 0 < p < len(data)})
    events: list[ws.Event] = []
    for a, b in zip([0, *cuts], [*cuts, len(data)]):
        conn.receive_data(data[a:b])
        events.extend(conn.events())
    return events


def _joined(events: list[ws.Event]) -> list[Any]:
    out: list[Any] = []
    parts: list[Any] = []
    for event in events:
        if isinstance(event, (ws.Text, ws.Binary)):
            parts.append(event.data)
            if event.fin:
                out.append("".join(parts) if isinstance(event, ws.Text) else b"".join(parts))
                parts = []
        else:
            out.append(event)
    return out


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("bytewise", [False, True])
def test_rfc7692_bfinal_example_is_accepted(stream: bool, bytewise: bool) -> None:
    """RFC 7692 7.2.3.4: "Hello" flushed with a BFINAL block, then one octet (0x00) "necessary
    to allow the payload to be decompressed in the same manner as messages compressed using
    DEFLATE blocks with BFINAL unset". wsproto and websockets accept it; we refused it (1007)."""
    data = _masked_frame(0xC1, bytes.fromhex("f348cdc9c9070000")) + _masked_frame(
        0xC1,
        bytes.fromhex("f248cdc9c90700"),  # the RFC 7.2.3.1 "Hello", with takeover reset
    )
    conn = ws.Connection(ws.Role.SERVER, deflate=ws.DeflateOptions(), stream=stream)
    points = range(len(data)) if bytewise else ()
    assert _joined(_feed(conn, data, points)) == ["Hello", "Hello"]


@SETTINGS
@given(
    messages=st.lists(st.binary(max_size=200), min_size=1, max_size=3),
    trailer=st.sampled_from([b"", b"\x00"]),
    fragment=st.integers(1, 60),
    points=st.lists(st.integers(0, 2000), max_size=6),
    stream=st.booleans(),
)
def test_bfinal_messages_any_fragmenting_any_split(
    messages: list[bytes], trailer: bytes, fragment: int, points: list[int], stream: bool
) -> None:
    """Each message compressed to its end (Z_FINISH, as RFC 7692 7.2.3.4 allows), with or
    without the RFC's extra 0x00, fragmented anyhow and fed split anyhow: the same messages."""
    data = b""
    for message in messages:
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        payload = compressor.compress(message) + compressor.flush(zlib.Z_FINISH) + trailer
        pieces = [payload[i : i + fragment] for i in range(0, len(payload), fragment)]
        for i, piece in enumerate(pieces):
            b0 = (0x80 if i == len(pieces) - 1 else 0) | (0x42 if i == 0 else 0)
            data += _masked_frame(b0, piece)
    conn = ws.Connection(ws.Role.SERVER, deflate=ws.DeflateOptions(), stream=stream)
    assert _joined(_feed(conn, data, points)) == messages


def test_data_after_a_final_block_and_its_flush_is_refused() -> None:
    """What follows the final block is inflated, never dropped: a second complete stream
    with more data after it is still refused (1007)."""
    finish = zlib.compressobj(6, zlib.DEFLATED, -15)
    one = finish.compress(b"a") + finish.flush(zlib.Z_FINISH)
    conn = ws.Connection(ws.Role.SERVER, deflate=ws.DeflateOptions())
    with pytest.raises(ws.InvalidPayload):
        _feed(conn, _masked_frame(0xC2, one + one + b"\x01"))


def test_bfinal_bomb_after_the_final_block_is_bounded() -> None:
    """Output inflated after a final block counts against ws_max_message_size too."""
    first = zlib.compressobj(6, zlib.DEFLATED, -15)
    head = first.compress(b"x" * 1000) + first.flush(zlib.Z_FINISH)
    second = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = second.compress(b"\0" * (8 << 20)) + second.flush(zlib.Z_SYNC_FLUSH)
    limits = Limits(ws_max_message_size=1 << 20)
    conn = ws.Connection(ws.Role.SERVER, deflate=ws.DeflateOptions(), limits=limits)
    frame = _masked_frame(0xC2, head + bomb[:-4])
    assert len(frame) < 65_536

    def refused() -> None:
        with pytest.raises(ws.MessageTooBig):
            _feed(conn, frame)

    with allocation_counter() as measure:
        assert measure(refused) < 4 << 20


@pytest.mark.parametrize("kind", ["binary", "text", "deflate"])
def test_empty_continuation_frames_do_not_grow_memory(kind: str) -> None:
    """A message continued by empty frames stays empty: it may not hold one list slot per
    frame (a peer could grow memory without bound inside ws_max_message_size)."""
    deflate = ws.DeflateOptions() if kind == "deflate" else None
    conn = ws.Connection(ws.Role.SERVER, deflate=deflate)
    first = {"binary": 0x02, "text": 0x01, "deflate": 0x42}[kind]
    # An empty stored block (what a sync flush of nothing gives) inflates to nothing.
    empty = b"\x00\x00\x00\xff\xff" if kind == "deflate" else b""
    _feed(conn, _masked_frame(first, b"ab" if kind != "deflate" else empty))
    frames = _masked_frame(0x00, empty) * 4_000
    with allocation_counter():
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(3):
            _feed(conn, frames)
        grown = tracemalloc.get_traced_memory()[0] - before
    assert grown < 16 * 1024, grown  # a slot per frame: about 100 kB
    last = _feed(conn, _masked_frame(0x80, empty))
    expect = {"binary": ws.Binary(b"ab"), "text": ws.Text("ab"), "deflate": ws.Binary(b"")}
    assert last == [expect[kind]]


@SETTINGS
@given(
    chunks=st.lists(st.binary(max_size=20), min_size=1, max_size=8),
    pings=st.lists(st.binary(max_size=10), max_size=8),
    points=st.lists(st.integers(0, 400), max_size=8),
)
def test_fragments_with_interleaved_control_frames_any_split(
    chunks: list[bytes], pings: list[bytes], points: list[int]
) -> None:
    """Pings between fragments (RFC 6455 5.4) come out in order, the message whole, at any split,
    including empty fragments."""
    data = b""
    expect: list[Any] = []
    for i, chunk in enumerate(chunks):
        b0 = (0x80 if i == len(chunks) - 1 else 0) | (0x02 if i == 0 else 0)
        data += _masked_frame(b0, chunk)
        if i < len(pings) and i < len(chunks) - 1:
            data += _masked_frame(0x89, pings[i])
            expect.append(ws.Ping(pings[i]))
    expect.append(b"".join(chunks))
    for stream in (False, True):
        conn = ws.Connection(ws.Role.SERVER, stream=stream)
        assert _joined(_feed(conn, data, points)) == expect
