"""The bytes of RFC 6455 frames: opcodes, header layouts, masking, close codes and reasons."""

from __future__ import annotations

import struct

_CONTINUATION, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

_pack_short = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack
_pack_short_masked = struct.Struct("!BBH4s").pack
_pack_long_masked = struct.Struct("!BBQ4s").pack


def _valid_close_code(code: int) -> bool:
    # RFC 6455 7.4.1/7.4.2 and the IANA registry (1012-1014); 1004-1006 and 1015 are
    # reserved and MUST NOT appear in a close frame; 3000-4999 are for libraries and apps.
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


# Big-integer conversions slow down past a few tens of KiB (cache effects), so large
# payloads are masked in blocks of this size (a multiple of 4: the key stays aligned).
_BLOCK = 64 * 1024


def _key_int(key: bytes, n: int) -> int:
    # Made per call, never remembered: a module-level memo of the last key would be state
    # shared between clients (the blocks of one call share it below).
    return int.from_bytes(key * (n >> 2) + key[: n & 3], "little")


def mask(data: bytes | bytearray | memoryview, key: bytes) -> bytes:
    """XOR ``data`` with the 4-byte masking ``key`` repeated (RFC 6455 5.3); it is its own inverse."""
    n = len(data)
    if n < 1024:
        if not n:
            return b""
        keys = int.from_bytes(key * (n >> 2) + key[: n & 3], "little")
        # One big-integer XOR runs at C speed: far faster than a byte loop in Python.
        return (int.from_bytes(data, "little") ^ keys).to_bytes(n, "little")
    if n <= _BLOCK:
        return (int.from_bytes(data, "little") ^ _key_int(key, n)).to_bytes(n, "little")
    keys = _key_int(key, _BLOCK)
    from_bytes = int.from_bytes
    with memoryview(data) as view:
        parts = [
            (from_bytes(view[i : i + _BLOCK], "little") ^ keys).to_bytes(_BLOCK, "little")
            for i in range(0, n - _BLOCK + 1, _BLOCK)
        ]
        rest = n % _BLOCK
        if rest:
            parts.append(
                (
                    from_bytes(view[n - rest :], "little") ^ (keys & ((1 << (8 * rest)) - 1))
                ).to_bytes(rest, "little")
            )
    return b"".join(parts)


def _trim_reason(reason: str) -> bytes:
    # A close reason fits in 123 bytes (RFC 6455 5.5); cut on a character boundary.
    raw = reason.encode("utf-8")
    if len(raw) <= 123:
        return raw
    return raw[:123].decode("utf-8", "ignore").encode("utf-8")
