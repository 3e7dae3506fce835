"""Content coding (RFC 9110 sections 8.4 and 12.5.3): negotiation, streaming encoders, bounded decoders.

* :func:`negotiate_encoding` picks a coding from ``Accept-Encoding``;
  responses that depend on it carry ``Vary: Accept-Encoding`` (:func:`add_vary`).
* :func:`should_encode` is the response policy: never a 206 (the ranges are of
  the unencoded representation), a body that already has a Content-Encoding,
  a body without content (1xx, 204, 304), or one below a size threshold.
* :func:`make_encoder` gives a streaming encoder for ``gzip`` and ``deflate``
  (zlib, standard library) and, when their packages are installed, ``br``
  (``brotli``) and ``zstd`` (``zstandard``) -- optional extras, never required.
* :func:`make_decoder` gives a streaming decoder for request bodies, bounded
  by :class:`DecodingLimits` in total decoded size and in expansion ratio, so a
  decompression bomb raises :class:`DecompressionBomb` (413) after producing at
  most the limit.

``deflate`` is the zlib format (RFC 1950), as RFC 9110 section 8.4.1.2 defines
it; raw deflate streams are refused. ``x-gzip`` is taken as ``gzip`` (section 8.4.1.3).
"""

from __future__ import annotations

import importlib
import re
import zlib
from collections.abc import Sequence
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

__all__ = [
    "AVAILABLE_CODINGS",
    "VARY",
    "ContentDecodingError",
    "Decoder",
    "DecodingLimits",
    "DecompressionBomb",
    "Encoder",
    "MalformedEncodedBody",
    "UnsupportedContentCoding",
    "add_vary",
    "make_decoder",
    "make_encoder",
    "negotiate_encoding",
    "parse_accept_encoding",
    "should_encode",
]

#: Codings this installation can produce and read, in server preference order.
AVAILABLE_CODINGS: tuple[str, ...] = tuple(
    coding
    for coding, present in (
        ("zstd", _zstandard is not None),
        ("br", _brotli is not None),
        ("gzip", True),
        ("deflate", True),
    )
    if present
)

#: The field a response chosen by Accept-Encoding must carry (RFC 9110 section 12.5.5).
VARY = (b"vary", b"accept-encoding")

_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
# codings [ OWS ";" OWS "q=" qvalue ], qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
_ITEM_RE = re.compile(
    rb"[ \t]*(?:("
    + _TOKEN
    + rb")(?:[ \t]*;[ \t]*[qQ]=(0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?))?)?[ \t]*(?:,|\Z)"
)
_ALIASES = {"x-gzip": "gzip"}
_NO_CONTENT = frozenset({204, 206, 304})


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


# ---- negotiation ------------------------------------------------------------------------------


def parse_accept_encoding(value: bytes) -> dict[str, float] | None:
    """The codings of an ``Accept-Encoding`` value with their weights; ``None`` if malformed.

    Names are lowercased and ``x-gzip`` becomes ``gzip``. A coding listed twice is
    malformed here: its weight would be ambiguous.
    """
    weights: dict[str, float] = {}
    pos = 0
    end = len(value)
    while pos < end:
        match = _ITEM_RE.match(value, pos)
        if match is None or match.end() == pos:
            return None
        pos = match.end()
        name, q = match.group(1, 2)
        if name is None:
            continue
        coding = name.decode("ascii").lower()
        coding = _ALIASES.get(coding, coding)
        if coding in weights:
            return None
        weights[coding] = 1.0 if q is None else float(q)
    return weights


def negotiate_encoding(
    accept_encoding: bytes | None, available: Sequence[str] = AVAILABLE_CODINGS
) -> str | None:
    """The coding to send: one of ``available``, ``"identity"``, or ``None`` if none is acceptable.

    RFC 9110 section 12.5.3: without the field any coding is acceptable, but a
    response without coding is the safe choice, so ``"identity"`` comes back; an
    empty value accepts only identity; ``q=0`` refuses a coding; ``*`` covers
    codings not listed. Among acceptable codings the highest weight wins, ties
    going to the order of ``available``. ``identity`` is acceptable unless refused
    by ``identity;q=0`` or by ``*;q=0`` without an ``identity`` entry; it wins over
    a coding only when listed with a higher weight, and is the fallback otherwise. A malformed
    value is treated as an empty one (identity only). ``None`` lets a server answer
    406 or, as the RFC prefers, send identity anyway.
    """
    if accept_encoding is None:
        return "identity"
    weights = parse_accept_encoding(accept_encoding)
    if weights is None:
        return "identity"
    star = weights.get("*")
    best, best_q = None, 0.0
    for coding in available:
        q = weights.get(coding, star if star is not None else 0.0)
        if q > best_q:
            best, best_q = coding, q
    listed = weights.get("identity")
    if best is not None:
        # identity competes on weight only when listed; otherwise it is the fallback.
        return "identity" if listed is not None and listed > best_q else best
    if listed is not None:
        return "identity" if listed > 0 else None
    return None if star == 0 else "identity"


def add_vary(headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``accept-encoding`` in Vary: merged into an existing Vary, else added.

    ``Vary: *`` already covers it and is left alone.
    """
    out = list(headers)
    for index, (name, value) in enumerate(out):
        if name.lower() == b"vary":
            members = [m.strip(b" \t").lower() for m in value.split(b",")]
            if b"*" in members or b"accept-encoding" in members:
                return out
            out[index] = (
                name,
                value + b", accept-encoding" if value.strip(b" \t") else b"accept-encoding",
            )
            return out
    out.append(VARY)
    return out


def should_encode(
    status: int,
    headers: Sequence[tuple[bytes, bytes]],
    *,
    size: int | None = None,
    min_size: int = 1024,
) -> bool:
    """Whether a response may be content-coded.

    Not for 1xx, 204, 206 (ranges refer to the unencoded representation) or 304;
    not if it already has a Content-Encoding; not if ``size`` (when known, e.g.
    from Content-Length) is below ``min_size``, where coding costs more than it saves.
    """
    if status < 200 or status in _NO_CONTENT:
        return False
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"content-encoding" and value.strip(b" \t").lower() != b"identity":
            return False
        if lowered == b"content-length" and size is None and value.isdigit():
            size = int(value)
    return size is None or size >= min_size


# ---- encoders ---------------------------------------------------------------------------------


class Encoder(Protocol):
    """A streaming encoder: feed pieces with :meth:`encode`, then call :meth:`finish` once."""

    coding: str

    def encode(self, data: bytes, *, flush: bool = False) -> bytes:
        """Encoded bytes for ``data``; ``flush`` forces out everything so far (for streaming)."""

    def finish(self) -> bytes:
        """The final encoded bytes."""


class _ZlibEncoder:
    __slots__ = ("_compressor", "coding")

    def __init__(self, coding: str, wbits: int, level: int) -> None:
        self.coding = coding
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, wbits)

    def encode(self, data: bytes, *, flush: bool = False) -> bytes:
        out = self._compressor.compress(data)
        return out + self._compressor.flush(zlib.Z_SYNC_FLUSH) if flush else out

    def finish(self) -> bytes:
        return self._compressor.flush(zlib.Z_FINISH)


class _BrotliEncoder:
    __slots__ = ("_compressor", "coding")

    def __init__(self, quality: int) -> None:
        assert _brotli is not None
        self.coding = "br"
        self._compressor = _brotli.Compressor(quality=quality)

    def encode(self, data: bytes, *, flush: bool = False) -> bytes:
        out: bytes = self._compressor.process(data)
        return out + self._compressor.flush() if flush else out

    def finish(self) -> bytes:
        out: bytes = self._compressor.finish()
        return out


class _ZstdEncoder:
    __slots__ = ("_compressor", "coding")

    def __init__(self, level: int) -> None:
        assert _zstandard is not None
        self.coding = "zstd"
        # RFC 9659 section 3: encoders keep the window at 8 MB or less.
        params = _zstandard.ZstdCompressionParameters.from_level(level, window_log=23)
        self._compressor = _zstandard.ZstdCompressor(compression_params=params).compressobj()

    def encode(self, data: bytes, *, flush: bool = False) -> bytes:
        out: bytes = self._compressor.compress(data)
        if flush:
            out += self._compressor.flush(_zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        return out

    def finish(self) -> bytes:
        out: bytes = self._compressor.flush()
        return out


def make_encoder(coding: str, level: int | None = None) -> Encoder:
    """A streaming encoder for ``coding`` (``gzip``, ``deflate``, ``br``, ``zstd``).

    ``level`` defaults to a speed-leaning level per coding (gzip 6, brotli 4, zstd 3).
    Raises :class:`LocalProtocolError` for a coding that is unknown or not installed.
    """
    coding = _ALIASES.get(coding.lower(), coding.lower())
    if coding == "gzip":
        return _ZlibEncoder("gzip", 31, 6 if level is None else level)
    if coding == "deflate":
        return _ZlibEncoder("deflate", 15, 6 if level is None else level)
    if coding == "br" and _brotli is not None:
        return _BrotliEncoder(4 if level is None else level)
    if coding == "zstd" and _zstandard is not None:
        return _ZstdEncoder(3 if level is None else level)
    raise LocalProtocolError(f"content coding {coding!r} is not available")


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


class _ZlibEngine:
    """zlib/gzip, output capped with max_length; gzip may hold several members (RFC 1952)."""

    __slots__ = ("_multi", "_object", "_wbits")

    def __init__(self, wbits: int, multi_member: bool) -> None:
        self._wbits = wbits
        self._multi = multi_member
        self._object = zlib.decompressobj(wbits)

    def feed(self, data: bytes, max_out: int) -> bytes:
        pieces = []
        total = 0
        while True:
            out = self._object.decompress(data, max_out - total)
            pieces.append(out)
            total += len(out)
            if total >= max_out:
                break  # over the budget: the caller raises; no more output is produced
            if self._object.eof:
                rest = self._object.unused_data
                if not rest:
                    break
                if not self._multi:
                    raise ValueError("data after the end of the stream")
                self._object = zlib.decompressobj(self._wbits)
                data = rest
                continue
            data = self._object.unconsumed_tail
            if not data:
                break
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
        engine = _ZlibEngine(31, multi_member=True)
    elif coding == "deflate":
        engine = _ZlibEngine(15, multi_member=False)
    elif coding == "br" and _brotli is not None:
        engine = _BrotliEngine()
    elif coding == "zstd" and _zstandard is not None:
        engine = _ZstdEngine()
    else:
        raise UnsupportedContentCoding(f"unsupported Content-Encoding {content_encoding!r}")
    return Decoder(coding, engine, limits)
