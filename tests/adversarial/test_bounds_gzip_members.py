"""gzip request bodies of many tiny members: a CPU amplifier, bounded by member count.

RFC 1952 section 2.2: "A gzip file consists of a series of 'members' (compressed data sets)";
RFC 9110 8.4.1.3 takes the format as it is, so several members are legal. Each member costs the
decoder a new zlib stream and a pass of its loop, whatever its size: measured here in zlib calls,
a body of 20-byte empty members cost about 200 times the calls per byte of one member. HTTP
clients compress a body as one stream, so we choose strictness: ``DecodingLimits.max_members``
(64) bounds them, and a body past it raises TooManyMembers (413) after at most that many zlib
streams, fed whole, byte by byte or split anywhere.

Neither server decodes request bodies (the Content-Encoding is the application's, through
``tether.coding.make_decoder``), so the bound is checked on the decoder an application uses.
"""

from __future__ import annotations

import gzip
import os
import types
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tether._coding_decode as coding_decode
from tether.coding import DecodingLimits, DecompressionBomb, TooManyMembers, make_decoder
from tether.errors import RemoteProtocolError

EMPTY = gzip.compress(b"")  # 20 bytes
MANY = EMPTY * 5000  # 100 kB


class ZlibCalls:
    """Counts the zlib streams the decoder makes and the decompress calls on them."""

    def __init__(self) -> None:
        self.streams = 0
        self.calls = 0

    def decompressobj(self, wbits: int) -> Any:
        self.streams += 1
        real = zlib.decompressobj(wbits)
        counter = self

        class Counted:
            def decompress(self, data: Any, max_length: int = 0) -> bytes:
                counter.calls += 1
                return real.decompress(data, max_length)

            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

        return Counted()

    @property
    def total(self) -> int:
        return self.streams + self.calls


@contextmanager
def counting(monkeypatch: pytest.MonkeyPatch) -> Iterator[ZlibCalls]:
    calls = ZlibCalls()
    fake = types.SimpleNamespace(decompressobj=calls.decompressobj, error=zlib.error)
    with monkeypatch.context() as patch:
        patch.setattr(coding_decode, "zlib", fake)
        yield calls


def _decode(pieces: list[bytes], limits: DecodingLimits | None = None) -> bytes:
    decoder = make_decoder(b"gzip", limits)
    assert decoder is not None
    out = b"".join(decoder.decode(piece) for piece in pieces)
    return out + decoder.finish()


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]


def test_tiny_members_cost_far_more_zlib_calls_per_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    """The measurement behind the bound (no bound here): calls per kB, one member against
    thousands of empty ones, both fed in 64 KiB reads."""
    one = gzip.compress(os.urandom(50_000) + bytes(50_000))
    unbounded = DecodingLimits(max_members=10**9)
    per_kb = {}
    for name, body in (("one", one), ("many", MANY)):
        with counting(monkeypatch) as calls:
            _decode([body[i : i + 65536] for i in range(0, len(body), 65536)], unbounded)
        per_kb[name] = calls.total / (len(body) / 1024)
    assert per_kb["one"] < 1 and per_kb["many"] > 100, per_kb  # ~0.3 against ~100
    assert per_kb["many"] / per_kb["one"] > 100, per_kb


@pytest.mark.parametrize("way", ["whole", "64 KiB reads", "byte by byte"])
def test_too_many_members_are_refused_after_bounded_work(
    monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    step = {"whole": len(MANY), "64 KiB reads": 65536, "byte by byte": 1}[way]
    with counting(monkeypatch) as calls, pytest.raises(TooManyMembers) as info:
        _decode([MANY[i : i + step] for i in range(0, len(MANY), step)])
    assert isinstance(info.value, DecompressionBomb) and isinstance(info.value, RemoteProtocolError)
    assert info.value.status_hint == 413 and info.value.limit == "max_members"
    assert "max_members" in str(info.value)
    limit = DecodingLimits().max_members
    assert limit == 64
    assert calls.streams == limit  # the 65th member is refused before its stream is made
    # One call a member (a call a byte, and one at each member's end, fed byte by byte):
    # bounded by the member limit, not by the 5000 members sent.
    assert calls.calls <= (limit * (len(EMPTY) + 1) if step == 1 else 2 * limit), calls.calls


def test_byte_by_byte_refusal_reads_no_further_than_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoder = make_decoder(b"gzip")
    assert decoder is not None
    fed = 0
    with counting(monkeypatch) as calls, pytest.raises(TooManyMembers):
        for i in range(len(MANY)):
            decoder.decode(MANY[i : i + 1])
            fed += 1
    assert fed == 64 * len(EMPTY)  # the first byte of the 65th member is refused
    assert calls.streams == 63  # the first stream was made with the decoder, before counting


@settings(max_examples=60, deadline=None)
@given(
    texts=st.lists(st.binary(max_size=40), min_size=1, max_size=8),
    cuts=st.lists(st.integers(0, 10_000), max_size=6),
)
def test_members_up_to_the_bound_are_read_at_any_split(texts: list[bytes], cuts: list[int]) -> None:
    limits = DecodingLimits(max_members=len(texts))
    body = b"".join(gzip.compress(t) for t in texts)
    for pieces in ([body], [body[i : i + 1] for i in range(len(body))], _split(body, cuts)):
        assert _decode(pieces, limits) == b"".join(texts)
    over = DecodingLimits(max_members=len(texts) - 1) if len(texts) > 1 else None
    if over is not None:
        for pieces in ([body], _split(body, cuts)):
            with pytest.raises(TooManyMembers):
                _decode(pieces, over)


def test_default_reads_sixty_four_members() -> None:
    body = b"".join(gzip.compress(b"%d," % i) for i in range(64))
    assert _decode([body]) == b"".join(b"%d," % i for i in range(64))
    with pytest.raises(TooManyMembers):
        _decode([body + EMPTY])
