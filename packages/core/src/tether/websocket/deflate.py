"""permessage-deflate (RFC 7692): negotiation and the per-message codec.

:class:`DeflateOptions` holds the extension's four parameters and our
compression level. Given to a handshake it says what an endpoint wants or
accepts; the handshake gives back another ``DeflateOptions``, what was agreed,
which a :class:`~tether.websocket.Connection` takes as ``deflate=``.
(``DeflateParams`` is the deprecated old name of the agreed form.)

Decompression is bounded while it happens: the decompressor is never asked for
more output than the message limit still allows, so a small "zip bomb" frame
costs at most the limit in memory before it is refused with 1009.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from tether.websocket.errors import HandshakeError, InvalidPayload, MessageTooBig

#: The extension's token in ``Sec-WebSocket-Extensions``.
EXTENSION_NAME = "permessage-deflate"

# RFC 7692 7.2.1: the sender removes these 4 octets after a sync flush; the
# receiver appends them back before inflating.
_TAIL = b"\x00\x00\xff\xff"


@dataclass(frozen=True, slots=True)
class DeflateOptions:
    """permessage-deflate parameters (RFC 7692 section 7.1), wished for or agreed.

    Given to :func:`~tether.websocket.server_handshake`, they say what to ask of
    the client and what to impose on ourselves whatever the offer; given to
    :func:`~tether.websocket.client_request_headers`, what to offer. The
    handshake's result (``Accepted.deflate``, ``Negotiated.deflate``) is the same
    type holding what both ends agreed, for ``Connection(deflate=...)``.

    Window bits are 8 to 15 (RFC 7692 7.1.2), but the side that compresses must
    use 9 to 15, since zlib cannot compress with an 8-bit window: a server's
    ``server_max_window_bits`` or a client's ``client_max_window_bits`` of 8 is
    refused with ``ValueError`` by the handshake.
    """

    #: The server resets its compression context after each message.
    server_no_context_takeover: bool = False
    #: The client resets its compression context after each message.
    client_no_context_takeover: bool = False
    #: Base-2 log of the server's LZ77 window.
    server_max_window_bits: int = 15
    #: Base-2 log of the client's LZ77 window; a server can only impose it when the client
    #: offered the parameter.
    client_max_window_bits: int = 15
    #: zlib compression level for our messages (local choice, not negotiated).
    level: int = 6
    #: zlib ``memLevel`` of our compressor, 1 to 9 (local choice, not negotiated): its state
    #: takes ``2**(mem_level + 9)`` bytes beside the ``2**(bits + 2)`` of its window, so a lower
    #: one costs less per connection and compresses a little worse.
    mem_level: int = 8

    def __post_init__(self) -> None:
        for name in ("server_max_window_bits", "client_max_window_bits"):
            bits = getattr(self, name)
            if not 8 <= bits <= 15:
                raise ValueError(f"DeflateOptions.{name} must be 8 to 15, got {bits!r}")
        if not -1 <= self.level <= 9:
            raise ValueError(f"DeflateOptions.level must be -1 to 9, got {self.level!r}")
        if not 1 <= self.mem_level <= 9:
            raise ValueError(f"DeflateOptions.mem_level must be 1 to 9, got {self.mem_level!r}")


#: The old name of the agreed parameters, now the same class (deprecated).
DeflateParams = DeflateOptions


def _compressing_bits(bits: int, name: str) -> None:
    if bits < 9:
        raise ValueError(f"zlib cannot compress with an 8-bit window: {name} must be 9 to 15")


# ---- header syntax ---------------------------------------------------------------------------

_TOKEN_CHARS = frozenset(
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

#: One parsed extension: its name and its parameters in order (value None when absent).
_Extension = tuple[str, list[tuple[str, "str | None"]]]


def parse_extensions(values: Iterable[bytes]) -> list[_Extension]:
    """Parse ``Sec-WebSocket-Extensions`` field values (RFC 6455 9.1) into (name, params).

    Raises :class:`HandshakeError` on any syntax error: an ambiguous
    negotiation is refused rather than guessed at.
    """
    result: list[_Extension] = []
    for value in values:
        for ext in _parse_one_value(value):
            result.append(ext)
    return result


def _parse_one_value(value: bytes) -> list[_Extension]:
    exts: list[_Extension] = []
    i, n = 0, len(value)

    def skip_ows(i: int) -> int:
        while i < n and value[i] in (0x20, 0x09):
            i += 1
        return i

    def token(i: int) -> tuple[str, int]:
        start = i
        while i < n and value[i] in _TOKEN_CHARS:
            i += 1
        if i == start:
            raise HandshakeError(f"bad Sec-WebSocket-Extensions syntax: {value!r}")
        return value[start:i].decode("ascii"), i

    while True:
        i = skip_ows(i)
        if i < n and value[i] == 0x2C:  # empty list element, allowed by RFC 9110 5.6.1
            i += 1
            continue
        if i >= n:
            break
        name, i = token(i)
        params: list[tuple[str, str | None]] = []
        i = skip_ows(i)
        while i < n and value[i] == 0x3B:  # ";"
            i = skip_ows(i + 1)
            pname, i = token(i)
            i = skip_ows(i)
            pvalue: str | None = None
            if i < n and value[i] == 0x3D:  # "="
                i = skip_ows(i + 1)
                if i < n and value[i] == 0x22:  # quoted-string
                    i += 1
                    chars = bytearray()
                    while True:
                        if i >= n:
                            raise HandshakeError("unterminated quoted string in extensions")
                        c = value[i]
                        if c == 0x22:
                            i += 1
                            break
                        if c == 0x5C:
                            i += 1
                            if i >= n:
                                raise HandshakeError("bad escape in extensions")
                            c = value[i]
                        chars.append(c)
                        i += 1
                    # RFC 6455 9.1: a quoted value must be a token once unescaped.
                    if not chars or any(c not in _TOKEN_CHARS for c in bytes(chars)):
                        raise HandshakeError("quoted extension parameter is not a token")
                    pvalue = chars.decode("ascii")
                else:
                    pvalue, i = token(i)
                i = skip_ows(i)
            params.append((pname.lower(), pvalue))
        exts.append((name.lower(), params))
        if i < n:
            if value[i] != 0x2C:
                raise HandshakeError(f"bad Sec-WebSocket-Extensions syntax: {value!r}")
            i += 1
    return exts


def _window_bits(value: str | None) -> int | None:
    # RFC 7692 7.1.2: a decimal integer 8 to 15, no leading zeros.
    if value is None or not value.isdigit() or (len(value) > 1 and value[0] == "0"):
        return None
    bits = int(value)
    return bits if 8 <= bits <= 15 else None


class _Offer:
    """The parameters of one permessage-deflate offer or response, validated."""

    __slots__ = ("client_bits", "client_bits_present", "client_nct", "server_bits", "server_nct")

    def __init__(self, params: list[tuple[str, str | None]]) -> None:
        """Raise ValueError on an unknown, duplicated or malformed parameter (RFC 7692 7.1)."""
        self.server_nct = False
        self.client_nct = False
        self.server_bits: int | None = None
        self.client_bits: int | None = None
        self.client_bits_present = False
        seen: set[str] = set()
        for name, value in params:
            if name in seen:
                raise ValueError(f"duplicate parameter {name}")
            seen.add(name)
            if name == "server_no_context_takeover":
                if value is not None:
                    raise ValueError("server_no_context_takeover takes no value")
                self.server_nct = True
            elif name == "client_no_context_takeover":
                if value is not None:
                    raise ValueError("client_no_context_takeover takes no value")
                self.client_nct = True
            elif name == "server_max_window_bits":
                bits = _window_bits(value)
                if bits is None:
                    raise ValueError("server_max_window_bits needs a value 8 to 15")
                self.server_bits = bits
            elif name == "client_max_window_bits":
                self.client_bits_present = True
                if value is not None:
                    bits = _window_bits(value)
                    if bits is None:
                        raise ValueError("client_max_window_bits must be 8 to 15")
                    self.client_bits = bits
            else:
                raise ValueError(f"unknown parameter {name}")


def negotiate_server(
    extensions: list[_Extension], options: DeflateOptions
) -> tuple[DeflateOptions, bytes] | None:
    """Pick the first acceptable permessage-deflate offer (RFC 7692 7.1).

    Returns the agreed parameters and the ``Sec-WebSocket-Extensions`` value
    to answer with, or None when no offer is acceptable (then the connection
    proceeds without compression). Offers with unknown, duplicate or invalid
    parameters are declined, as RFC 7692 5.1 requires.
    """
    _compressing_bits(options.server_max_window_bits, "a server's server_max_window_bits")
    for name, params in extensions:
        if name != EXTENSION_NAME:
            continue
        try:
            offer = _Offer(params)
        except ValueError:
            continue
        server_bits = options.server_max_window_bits
        if offer.server_bits is not None:
            server_bits = min(server_bits, offer.server_bits)
            if server_bits < 9:
                continue  # zlib cannot compress with an 8-bit window: decline this offer
        client_bits = 15
        if offer.client_bits_present:
            client_bits = min(options.client_max_window_bits, offer.client_bits or 15)
        server_nct = offer.server_nct or options.server_no_context_takeover
        client_nct = offer.client_nct or options.client_no_context_takeover
        parts = [EXTENSION_NAME]
        if server_nct:
            parts.append("server_no_context_takeover")
        if client_nct:
            parts.append("client_no_context_takeover")
        if server_bits < 15 or offer.server_bits is not None:
            parts.append(f"server_max_window_bits={server_bits}")
        if offer.client_bits_present and (client_bits < 15 or offer.client_bits is not None):
            parts.append(f"client_max_window_bits={client_bits}")
        params_out = DeflateOptions(
            server_no_context_takeover=server_nct,
            client_no_context_takeover=client_nct,
            server_max_window_bits=server_bits,
            client_max_window_bits=client_bits,
            level=options.level,
            mem_level=options.mem_level,
        )
        return params_out, "; ".join(parts).encode("ascii")
    return None


def client_offer(options: DeflateOptions) -> bytes:
    """The ``Sec-WebSocket-Extensions`` value a client sends to offer permessage-deflate."""
    _compressing_bits(options.client_max_window_bits, "a client's client_max_window_bits")
    parts = [EXTENSION_NAME]
    if options.server_no_context_takeover:
        parts.append("server_no_context_takeover")
    if options.client_no_context_takeover:
        parts.append("client_no_context_takeover")
    if options.server_max_window_bits < 15:
        parts.append(f"server_max_window_bits={options.server_max_window_bits}")
    # Always announce client_max_window_bits: it lets the server pick a smaller window.
    if options.client_max_window_bits < 15:
        parts.append(f"client_max_window_bits={options.client_max_window_bits}")
    else:
        parts.append("client_max_window_bits")
    return "; ".join(parts).encode("ascii")


def check_client_response(
    extensions: list[_Extension], options: DeflateOptions | None
) -> DeflateOptions | None:
    """Validate the server's ``Sec-WebSocket-Extensions`` answer to our offer (RFC 7692 7.1).

    Raises :class:`HandshakeError` for an extension we did not offer, a second
    answer, a parameter the server may not send, or a window we cannot use.
    """
    if not extensions:
        return None
    if options is None:
        raise HandshakeError("the server accepted an extension we did not offer")
    if len(extensions) > 1:
        raise HandshakeError("the server accepted more than one extension")
    name, params = extensions[0]
    if name != EXTENSION_NAME:
        raise HandshakeError(f"the server accepted an extension we did not offer: {name}")
    try:
        answer = _Offer(params)
    except ValueError as exc:
        raise HandshakeError(f"bad permessage-deflate response: {exc}") from None
    if options.server_no_context_takeover and not answer.server_nct:
        raise HandshakeError("the server ignored server_no_context_takeover")
    server_bits = 15 if answer.server_bits is None else answer.server_bits
    if server_bits > options.server_max_window_bits:
        raise HandshakeError("the server chose a larger server_max_window_bits than offered")
    client_bits = 15
    if answer.client_bits_present:
        if answer.client_bits is None:
            raise HandshakeError("client_max_window_bits in a response needs a value")
        client_bits = answer.client_bits
        if client_bits > options.client_max_window_bits:
            raise HandshakeError("the server chose a larger client_max_window_bits than offered")
        if client_bits < 9:
            raise HandshakeError("client_max_window_bits=8 cannot be honoured by zlib")
    return DeflateOptions(
        server_no_context_takeover=answer.server_nct,
        client_no_context_takeover=answer.client_nct or options.client_no_context_takeover,
        server_max_window_bits=server_bits,
        client_max_window_bits=min(client_bits, options.client_max_window_bits),
        level=options.level,
        mem_level=options.mem_level,
    )


# ---- the codec --------------------------------------------------------------------------------


class _Deflater(Protocol):
    """What :class:`Compressor` uses of a ``zlib.compressobj``."""

    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self, mode: int, /) -> bytes: ...


class Compressor:
    """Compresses outgoing messages, keeping or resetting the context per the agreement.

    zlib's compressor is made at the first message, not with the connection, and dropped after
    each message when the context is not kept: its state is a few hundred KiB (about 90 KiB of
    it touched at once), so a client that negotiates permessage-deflate and idles would
    otherwise cost the server several times what an idle connection costs.
    """

    __slots__ = ("_bits", "_level", "_mem_level", "_obj", "_reset")

    def __init__(
        self, bits: int, no_context_takeover: bool, level: int, mem_level: int = 8
    ) -> None:
        """Prepare a raw-deflate compressor with a ``2**bits`` window and zlib's ``memLevel``."""
        self._bits = bits
        self._level = level
        self._mem_level = mem_level
        self._reset = no_context_takeover
        self._obj: _Deflater | None = None

    def compress(self, data: bytes, fin: bool) -> bytes:
        """Compress one frame's worth of a message; ``fin`` ends the message."""
        obj = self._obj
        if obj is None:
            obj = self._obj = zlib.compressobj(
                self._level, zlib.DEFLATED, -self._bits, self._mem_level
            )
        out = obj.compress(data) + obj.flush(zlib.Z_SYNC_FLUSH)
        if fin:
            if out.endswith(_TAIL):
                out = out[:-4]
            if self._reset:
                self._obj = None  # the next message starts a new context
        return out


class Decompressor:
    """Inflates incoming messages with a hard bound on the output of each call."""

    __slots__ = ("_bits", "_ended", "_obj", "_reset")

    def __init__(self, no_context_takeover: bool, bits: int = 15) -> None:
        """Prepare a raw-inflate decompressor for a sender's ``2**bits`` window.

        Its window costs ``2**bits`` bytes, so the agreed size is what is kept: a sender that
        agreed to a smaller window "MUST NOT use an LZ77 sliding window longer than" it (RFC
        7692 7.1.2.2), and one that does is refused (1007). An agreed 8 reads as 9: zlib cannot
        compress with 8 bits, so a zlib sender that agreed to 8 uses 9.
        """
        self._bits = max(bits, 9)
        self._reset = no_context_takeover
        self._obj = zlib.decompressobj(-self._bits)
        # Whether the message's deflate stream ended with a final block (see decompress).
        self._ended = False

    def decompress(self, data: bytes, fin: bool, budget: int) -> bytes:
        """Inflate one frame of a message, refusing output beyond ``budget`` bytes (1009)."""
        obj = self._obj
        try:
            if fin:
                data += _TAIL
            # Ask for one byte more than allowed: getting it proves the message too big,
            # and the decompressor never produces more than that.
            out = obj.decompress(data, budget + 1)
            if obj.eof:
                # RFC 7692 7.2.3.4: a sender may flush with a final (BFINAL) block, and its
                # example follows one with an octet that, with the 4 appended above, is an
                # empty stored block: what follows a final block is inflated as a new
                # stream, never dropped (and never depends on where frames were cut).
                self._ended = True
                rest = obj.unused_data
                obj = self._obj = zlib.decompressobj(-self._bits)
                if rest and len(out) <= budget:
                    out += obj.decompress(rest, budget + 1 - len(out))
                    if obj.eof:
                        if obj.unused_data:
                            raise InvalidPayload("data after the end of the deflate stream")
                        self._obj = zlib.decompressobj(-self._bits)
        except zlib.error as exc:
            raise InvalidPayload(f"invalid compressed data: {exc}") from None
        if len(out) > budget:
            raise MessageTooBig("message exceeds ws_max_message_size after decompression")
        if fin and (self._reset or self._ended):
            # A stream that ended cannot be continued: the next message starts a new one
            # (also when the sender left out the RFC's extra octet and the tail appended
            # above is an unfinished stored block).
            self._obj = zlib.decompressobj(-self._bits)
            self._ended = False
        return out


__all__ = [
    "EXTENSION_NAME",
    "Compressor",
    "Decompressor",
    "DeflateOptions",
    "check_client_response",
    "client_offer",
    "negotiate_server",
    "parse_extensions",
]
