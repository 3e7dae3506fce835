"""tether.coding: negotiation table, policy, streaming encoders against the stdlib and peers, bounded decoders."""

from __future__ import annotations

import gzip
import itertools
import zlib
from typing import Any

import brotli
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.bodies._support import load_spec
from tether import coding
from tether.coding import (
    DecodingLimits,
    make_decoder,
    make_encoder,
    negotiate_encoding,
    should_encode,
)
from tether.errors import LocalProtocolError

CASES = load_spec("negotiation.json")


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_negotiation_table(case: dict[str, Any]) -> None:
    value = None if case["accept_encoding"] is None else case["accept_encoding"].encode()
    assert negotiate_encoding(value, case["available"]) == case["expect"]


def test_vary() -> None:
    """RFC 9110 section 12.5.5: a response chosen by Accept-Encoding lists it in Vary."""
    assert coding.VARY == (b"vary", b"accept-encoding")
    assert coding.add_vary([]) == [(b"vary", b"accept-encoding")]
    assert coding.add_vary([(b"Vary", b"Origin")]) == [(b"Vary", b"Origin, accept-encoding")]
    assert coding.add_vary([(b"vary", b"Accept-Encoding")]) == [(b"vary", b"Accept-Encoding")]
    assert coding.add_vary([(b"vary", b"*")]) == [(b"vary", b"*")]


@pytest.mark.parametrize(
    ("status", "headers", "size", "expected"),
    [
        (200, [], 5000, True),
        (200, [(b"content-length", b"5000")], None, True),
        (200, [(b"content-length", b"10")], None, False),
        (200, [], 10, False),
        (200, [], None, True),
        (206, [], 5000, False),
        (304, [], 5000, False),
        (204, [], None, False),
        (101, [], None, False),
        (200, [(b"Content-Encoding", b"gzip")], 5000, False),
        (200, [(b"content-encoding", b"identity")], 5000, True),
    ],
)
def test_should_encode(
    status: int, headers: list[tuple[bytes, bytes]], size: int | None, expected: bool
) -> None:
    assert should_encode(status, headers, size=size) is expected


def decompress(name: str, data: bytes) -> bytes:
    if name == "gzip":
        return gzip.decompress(data)
    if name == "deflate":
        return zlib.decompress(data)
    if name == "br":
        return bytes(brotli.decompress(data))
    return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(data))


CODINGS = ["gzip", "deflate", "br", "zstd"]


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(CODINGS), st.lists(st.binary(max_size=3000), max_size=8), st.booleans())
def test_encoders_stream_into_what_peers_decode(
    name: str, pieces: list[bytes], flush: bool
) -> None:
    encoder = make_encoder(name)
    out = b"".join(encoder.encode(p, flush=flush) for p in pieces) + encoder.finish()
    assert decompress(name, out) == b"".join(pieces)


def test_flush_makes_output_decodable_so_far() -> None:
    """For streaming responses: after flush=True the client can decode everything sent."""
    for name in ("gzip", "deflate"):
        encoder = make_encoder(name)
        first = encoder.encode(b"event: 1\n\n" * 3, flush=True)
        partial = zlib.decompressobj(31 if name == "gzip" else 15).decompress(first)
        assert partial == b"event: 1\n\n" * 3


def compress(name: str, data: bytes) -> bytes:
    if name == "gzip":
        return gzip.compress(data)
    if name == "deflate":
        return zlib.compress(data)
    if name == "br":
        return bytes(brotli.compress(data, quality=4))
    return bytes(zstandard.ZstdCompressor().compress(data))


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(CODINGS),
    st.binary(max_size=5000),
    st.lists(st.integers(min_value=0), max_size=5),
)
def test_decoders_at_any_split(name: str, data: bytes, cuts: list[int]) -> None:
    encoded = compress(name, data)
    points = sorted({c % (len(encoded) + 1) for c in cuts} | {0, len(encoded)})
    decoder = make_decoder(name.encode())
    assert decoder is not None
    out = b"".join(decoder.decode(encoded[a:b]) for a, b in itertools.pairwise(points))
    decoder.finish()
    assert out == data


@pytest.mark.parametrize("name", CODINGS)
def test_truncated_body_is_an_error(name: str) -> None:
    encoded = compress(name, b"hello world" * 100)
    decoder = make_decoder(name)
    assert decoder is not None
    decoder.decode(encoded[:-4])
    with pytest.raises(coding.MalformedEncodedBody) as info:
        decoder.finish()
    assert info.value.status_hint == 400


@pytest.mark.parametrize("name", CODINGS)
def test_garbage_after_the_stream_is_an_error(name: str) -> None:
    encoded = compress(name, b"hello") + (b"junk" if name != "gzip" else b"\x00junk-not-gzip")
    decoder = make_decoder(name)
    assert decoder is not None
    with pytest.raises(coding.MalformedEncodedBody):
        decoder.decode(encoded)
        decoder.finish()


def test_gzip_members_are_concatenated() -> None:
    """RFC 1952 section 2.2: a gzip file is a series of members."""
    decoder = make_decoder(b"gzip")
    assert decoder is not None
    assert decoder.decode(gzip.compress(b"a") + gzip.compress(b"b")) == b"ab"
    decoder.finish()


@pytest.mark.parametrize("name", CODINGS)
def test_decompression_bomb_by_size(name: str) -> None:
    """10 MiB of zeros against a 1 MiB cap: the error comes with at most the cap produced."""
    encoded = compress(name, bytes(10 * 1024 * 1024))
    decoder = make_decoder(name, DecodingLimits(max_size=1024 * 1024, max_ratio=10**9))
    assert decoder is not None
    produced = 0
    with pytest.raises(coding.DecompressionBomb) as info:
        for i in range(0, len(encoded), 1024):
            produced += len(decoder.decode(encoded[i : i + 1024]))
    assert info.value.status_hint == 413 and info.value.limit == "max_size"
    assert produced <= 1024 * 1024


@pytest.mark.parametrize("name", CODINGS)
def test_decompression_bomb_by_ratio(name: str) -> None:
    encoded = compress(name, bytes(8 * 1024 * 1024))
    decoder = make_decoder(name, DecodingLimits(max_ratio=50))
    assert decoder is not None
    with pytest.raises(coding.DecompressionBomb) as info:
        decoder.decode(encoded)
    assert info.value.limit == "max_ratio"


@pytest.mark.parametrize("value", [b"compress", b"gzip, br", b"bogus"])
def test_unsupported_codings(value: bytes) -> None:
    with pytest.raises(coding.UnsupportedContentCoding) as info:
        make_decoder(value)
    assert info.value.status_hint == 415


def test_identity_needs_no_decoder() -> None:
    assert make_decoder(b"identity") is None
    assert make_decoder(b"") is None
    assert make_decoder(b"X-GZIP") is not None
    with pytest.raises(LocalProtocolError):
        make_encoder("compress")


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(CODINGS), st.binary(max_size=200))
def test_decoders_on_garbage_raise_typed_errors(name: str, data: bytes) -> None:
    decoder = make_decoder(name)
    assert decoder is not None
    try:
        decoder.decode(data)
        decoder.finish()
    except coding.ContentDecodingError:
        pass
