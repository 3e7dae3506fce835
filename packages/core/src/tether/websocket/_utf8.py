"""UTF-8 validation helpers for text messages and close reasons (RFC 6455 8.1)."""

from __future__ import annotations

import codecs

from tether.websocket.errors import InvalidPayload

_IncrementalDecoder = codecs.getincrementaldecoder("utf-8")


class Utf8Decoder:
    """Decodes a text message piece by piece, failing on the first byte that makes it invalid.

    CPython's incremental UTF-8 decoder rejects a truncated sequence as soon as
    its next byte is impossible (a bad continuation byte, an overlong prefix, a
    code point above U+10FFFF) but buffers a surrogate prefix (ED A0..ED BF);
    :meth:`feed` checks the buffered tail for that one case, so failing is as
    early as it can be.
    """

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        """Start a new message."""
        self._decoder = _IncrementalDecoder("strict")

    def feed(self, data: bytes, final: bool) -> str:
        """Decode the next piece; ``final`` ends the message (a dangling partial sequence fails)."""
        try:
            text: str = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            raise InvalidPayload(f"text message is not valid UTF-8: {exc.reason}") from None
        if not final:
            tail = self._decoder.getstate()[0]
            if len(tail) >= 2 and tail[0] == 0xED and tail[1] >= 0xA0:
                raise InvalidPayload("text message is not valid UTF-8: surrogate code point")
        return text


def decode(data: bytes, what: str = "text message") -> str:
    """Decode a whole payload, raising :class:`InvalidPayload` (1007) when it is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidPayload(f"{what} is not valid UTF-8: {exc.reason}") from None
