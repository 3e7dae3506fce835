"""Bounded streaming decoders for request bodies, their limits and errors, and the optional extras.

The public names are exported by :mod:`tether.coding`, which also negotiates codings and
encodes responses; this module is what both sides share (the errors, the extras' modules)
and the decoding side.
"""

from __future__ import annotations

import importlib
import zlib
from dataclasses import dataclass
from typing import Any, Protocol

from tether.errors import LocalProtocolError, RemoteProtocolError


def _optional(module: str) -> Any:
    """An optional extra's module, or ``None`` when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:  # pragma: no cover - depends on the environment
        return None


_brotli = _optional("brotli")  # tether[brotli]
_zstandard = _optional("zstandard")  # tether[zstd]

# RFC 9110 8.4.1.3: "x-gzip" is gzip.
_ALIASES = {"x-gzip": "gzip"}


# ---- errors -----------------------------------------------------------------------------------


class ContentDecodingError(RemoteProtocolError):
    """Base of the errors in a request body's content coding."""

    status_hint = 400


class MalformedEncodedBody(ContentDecodingError):
    """400: the body is not valid in its declared coding, or is truncated."""


class UnsupportedContentCoding(ContentDecodingError):
    """415: a Content-Encoding this installation cannot decode (RFC 9110 section 8.4)."""

    status_hint = 415


class DecompressionBomb(ContentDecodingError):
    """413: the decoded body exceeds a :class:`DecodingLimits` value; ``limit`` names it."""

    status_hint = 413
    limit: str = ""

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(f"{message} (DecodingLimits.{limit})")
        self.limit = limit


class TooManyMembers(DecompressionBomb):
    """413: a gzip body of more members than ``DecodingLimits.max_members``."""

    def __init__(self, message: str) -> None:
        super().__init__(message, limit="max_members")


# ---- decoders ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecodingLimits:
    """Bounds on a decoded request body."""

    #: Largest decoded body (413 beyond).
    max_size: int = 64 * 1024 * 1024
    #: Largest decoded/encoded ratio (413 beyond), checked once ``ratio_floor`` bytes are out.
    max_ratio: int = 100
    #: Decoded size below which the ratio is not checked (small bodies compress well).
    ratio_floor: int = 1024 * 1024
    #: Most gzip members in one body (413 beyond). RFC 1952 2.2 lets a gzip file be several
    #: members, and RFC 9110 8.4.1.3 takes that format as it is, so a few (concatenated
    #: files) are read. But each member costs a new zlib stream and a pass of the decoder's
    #: loop: a body of 20-byte empty members cost about 200 times the calls per byte of one
    #: member (measured in tests/adversarial/test_bounds_gzip_members.py), a CPU amplifier for any
    #: client. HTTP clients compress a body as one stream, so the bound is strict.
    max_members: int = 64


class Decoder:
    """A streaming decoder for one encoded request body; see :func:`make_decoder`."""

    __slots__ = ("_engine", "_finished", "_limits", "_size_in", "_size_out", "coding")

    def __init__(self, coding: str, engine: _Engine, limits: DecodingLimits) -> None:
        """Use :func:`make_decoder`."""
        self.coding = coding
        self._engine = engine
        self._limits = limits
        self._size_in = 0
        self._size_out = 0
        self._finished = False

    def decode(self, data: bytes) -> bytes:
        """The decoded bytes for the next piece of the body."""
        if self._finished:
            raise LocalProtocolError("decode() after finish()")
        self._size_in += len(data)
        budget = self._limits.max_size - self._size_out
        try:
            out = self._engine.feed(data, budget + 1)
        except ContentDecodingError:
            raise
        except (zlib.error, ValueError) as exc:
            raise MalformedEncodedBody(f"invalid {self.coding} data: {exc}") from None
        except Exception as exc:  # brotli.error and zstandard.ZstdError have no common base
            raise MalformedEncodedBody(f"invalid {self.coding} data: {exc}") from None
        self._size_out += len(out)
        self._check()
        return out

    def finish(self) -> bytes:
        """End of the body: raises :class:`MalformedEncodedBody` if the stream is truncated."""
        if self._finished:
            raise LocalProtocolError("finish() called twice")
        self._finished = True
        if not self._engine.complete():
            raise MalformedEncodedBody(f"truncated {self.coding} body")
        return b""

    def _check(self) -> None:
        limits = self._limits
        if self._size_out > limits.max_size:
            raise DecompressionBomb("decoded body too large", limit="max_size")
        if self._size_out > limits.ratio_floor and self._size_out > limits.max_ratio * max(
            1, self._size_in
        ):
            raise DecompressionBomb("decoded body expands too much", limit="max_ratio")


class _Engine(Protocol):
    def feed(self, data: bytes, max_out: int) -> bytes: ...

    def complete(self) -> bool: ...


# The most input given to zlib at once (see _ZlibEngine.feed).
_SLICE = 4 * 1024


class _ZlibEngine:
    """zlib/gzip, output capped with max_length; gzip may hold several members (RFC 1952)."""

    __slots__ = ("_members_left", "_multi", "_object", "_wbits")

    def __init__(self, wbits: int, multi_member: bool, max_members: int = 1) -> None:
        self._wbits = wbits
        self._multi = multi_member
        self._members_left = max_members - 1  # members after this one's stream
        self._object = zlib.decompressobj(wbits)

    def feed(self, data: bytes, max_out: int) -> bytes:
        pieces = []
        total = 0
        pos = 0
        with memoryview(data) as view:
            while True:
                # Input goes in slices: at a member's end zlib copies the rest of what it
                # was given into unused_data, which for a whole body of tiny members would
                # copy the body once per member (quadratic time).
                piece = view[pos : pos + _SLICE]
                obj = self._object
                out = obj.decompress(piece, max_out - total)
                if out:
                    pieces.append(out)
                    total += len(out)
                if total >= max_out:
                    break  # over the budget: the caller raises; no more output is produced
                # Under the budget, zlib read all of the piece (none is left unconsumed).
                pos += len(piece) - len(obj.unused_data)
                if pos >= len(data):
                    break
                if obj.eof:
                    if not self._multi:
                        raise ValueError("data after the end of the stream")
                    if self._members_left <= 0:
                        raise TooManyMembers("too many gzip members in one body")
                    self._members_left -= 1
                    self._object = zlib.decompressobj(self._wbits)
        return b"".join(pieces)

    def complete(self) -> bool:
        return self._object.eof and not self._object.unused_data


class _BrotliEngine:
    __slots__ = ("_object",)

    def __init__(self) -> None:
        assert _brotli is not None
        self._object = _brotli.Decompressor()

    def feed(self, data: bytes, max_out: int) -> bytes:
        obj: Any = self._object
        if obj.is_finished() and data:
            raise ValueError("data after the end of the stream")
        pieces = [obj.process(data, output_buffer_limit=max_out)]
        total = len(pieces[0])
        while total < max_out and not obj.can_accept_more_data():
            out = obj.process(b"", output_buffer_limit=max_out - total)
            if not out:
                break
            pieces.append(out)
            total += len(out)
        return b"".join(pieces)

    def complete(self) -> bool:
        return bool(self._object.is_finished())


class _ZstdEngine:
    """zstd has no output cap per call, so input goes in slices small enough to stay in budget."""

    __slots__ = ("_object",)

    # A zstd block of up to 128 KiB can be described in 4 bytes: the worst expansion per input byte.
    _WORST_RATIO = 32 * 1024

    def __init__(self) -> None:
        assert _zstandard is not None
        # RFC 9659 section 3: decoders may refuse windows over 8 MB.
        self._object = _zstandard.ZstdDecompressor(max_window_size=8 * 1024 * 1024).decompressobj()

    def feed(self, data: bytes, max_out: int) -> bytes:
        obj: Any = self._object
        pieces = []
        total = 0
        pos = 0
        while pos < len(data):
            if obj.eof:
                raise ValueError("data after the end of the stream")
            step = max(16, (max_out - total) // self._WORST_RATIO)
            out = obj.decompress(data[pos : pos + step])
            pos += step
            pieces.append(out)
            total += len(out)
            if total >= max_out:
                break
        if obj.eof and obj.unused_data:
            raise ValueError("data after the end of the stream")
        return b"".join(pieces)

    def complete(self) -> bool:
        return bool(self._object.eof)


def make_decoder(
    content_encoding: bytes | str, limits: DecodingLimits | None = None
) -> Decoder | None:
    """A decoder for a request's ``Content-Encoding`` value; ``None`` for identity.

    One coding only: stacked codings (``gzip, br``) are refused with
    :class:`UnsupportedContentCoding` (415), as are unknown or uninstalled ones.
    """
    if isinstance(content_encoding, bytes):
        content_encoding = content_encoding.decode("latin-1")
    coding = content_encoding.strip(" \t").lower()
    coding = _ALIASES.get(coding, coding)
    limits = limits if limits is not None else DecodingLimits()
    engine: _Engine
    if coding in ("", "identity"):
        return None
    if coding == "gzip":
        engine = _ZlibEngine(31, multi_member=True, max_members=limits.max_members)
    elif coding == "deflate":
        engine = _ZlibEngine(15, multi_member=False)
    elif coding == "br" and _brotli is not None:
        engine = _BrotliEngine()
    elif coding == "zstd" and _zstandard is not None:
        engine = _ZstdEngine()
    else:
        raise UnsupportedContentCoding(f"unsupported Content-Encoding {content_encoding!r}")
    return Decoder(coding, engine, limits)
