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
  most the limit, and in gzip members (``max_members``): a body of thousands of tiny
  members raises :class:`TooManyMembers` (413), so that its cost per byte stays that of
  one stream.

``deflate`` is the zlib format (RFC 1950), as RFC 9110 section 8.4.1.2 defines
it; raw deflate streams are refused. ``x-gzip`` is taken as ``gzip`` (section 8.4.1.3).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import Protocol

from tether._coding_decode import (
    _ALIASES,
    ContentDecodingError,
    Decoder,
    DecodingLimits,
    DecompressionBomb,
    MalformedEncodedBody,
    TooManyMembers,
    UnsupportedContentCoding,
    _brotli,
    _zstandard,
    make_decoder,
)
from tether.errors import LocalProtocolError

__all__ = [
    "AVAILABLE_CODINGS",
    "VARY",
    "ContentDecodingError",
    "Decoder",
    "DecodingLimits",
    "DecompressionBomb",
    "Encoder",
    "MalformedEncodedBody",
    "TooManyMembers",
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
# codings [ OWS ";" OWS "q=" qvalue ], qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ),
# between OWS; the second OWS follows a coding only, so a run of spaces is read one way (else a
# failing match tries every split of the run: quadratic).
_ITEM_RE = re.compile(
    rb"[ \t]*(?:("
    + _TOKEN
    + rb")(?:[ \t]*;[ \t]*[qQ]=(0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?))?[ \t]*)?(?:,|\Z)"
)
_NO_CONTENT = frozenset({204, 206, 304})


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
