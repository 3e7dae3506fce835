"""permessage-deflate windows and memory: what the servers offer, and the window kept to.

Both servers offer ``tether.serving_websocket.SERVER_DEFLATE`` (a 4 KiB window each way and
zlib's ``memLevel`` 5, as websockets serves by default); a decompressor keeps the window the
sender agreed to, and a sender that uses a longer one is refused (RFC 7692 7.1.2.2).
"""

from __future__ import annotations

import os
import zlib

import pytest

from tether.serving_websocket import SERVER_DEFLATE
from tether.websocket import DeflateOptions
from tether.websocket.deflate import Compressor, Decompressor, negotiate_server, parse_extensions
from tether.websocket.errors import InvalidPayload


def _answer(offer: bytes) -> tuple[DeflateOptions, bytes]:
    agreed = negotiate_server(parse_extensions([offer]), SERVER_DEFLATE)
    assert agreed is not None
    return agreed


def test_a_browser_s_offer_gets_small_windows_both_ways() -> None:
    # Chrome and Firefox offer client_max_window_bits without a value.
    agreed, header = _answer(b"permessage-deflate; client_max_window_bits")
    assert header == b"permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
    assert (agreed.server_max_window_bits, agreed.client_max_window_bits) == (12, 12)
    assert agreed.mem_level == 5


def test_without_the_client_parameter_only_our_window_is_small() -> None:
    # RFC 7692 7.1.2.2: the server may not ask for client_max_window_bits unless offered.
    agreed, header = _answer(b"permessage-deflate")
    assert header == b"permessage-deflate; server_max_window_bits=12"
    assert agreed.client_max_window_bits == 15


def test_a_smaller_window_asked_by_the_client_wins() -> None:
    agreed, header = _answer(b"permessage-deflate; server_max_window_bits=10")
    assert agreed.server_max_window_bits == 10
    assert b"server_max_window_bits=10" in header


@pytest.mark.parametrize("level", [0, 10])
def test_mem_level_is_checked(level: int) -> None:
    with pytest.raises(ValueError, match="mem_level"):
        DeflateOptions(mem_level=level)


def _raw_deflate(data: bytes, bits: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -bits)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def test_our_compressor_reads_back_with_the_window_it_announced() -> None:
    text = os.urandom(3000) * 4  # repeats 3000 bytes back: inside a 4 KiB window
    compressor = Compressor(12, False, 6, 5)
    decompressor = Decompressor(False, 12)
    for _ in range(3):  # context kept across messages
        assert decompressor.decompress(compressor.compress(text, True), True, 1 << 20) == text


def test_a_sender_that_uses_a_longer_window_than_agreed_is_refused() -> None:
    # Two messages with the context kept: the second repeats the first, 6000 bytes back, past
    # a 4 KiB window. (Inside one message the output itself serves as the window.)
    data = os.urandom(6000)
    sender = zlib.compressobj(9, zlib.DEFLATED, -15)
    first, second = ((sender.compress(data) + sender.flush(zlib.Z_SYNC_FLUSH))[:-4] for _ in "12")
    wide = Decompressor(False, 15)
    assert [wide.decompress(m, True, 1 << 20) for m in (first, second)] == [data, data]
    narrow = Decompressor(False, 12)
    assert narrow.decompress(first, True, 1 << 20) == data
    with pytest.raises(InvalidPayload):
        narrow.decompress(second, True, 1 << 20)


def test_an_agreed_8_bit_window_reads_a_zlib_sender_s_9() -> None:
    # zlib cannot compress with 8 bits: a zlib sender that agreed to 8 uses 9.
    data = os.urandom(300) * 2
    assert Decompressor(False, 8).decompress(_raw_deflate(data, 9), True, 1 << 20) == data
