"""A streaming ``application/x-www-form-urlencoded`` parser (WHATWG URL standard section 5).

Usage: :meth:`UrlencodedParser.feed` each piece of the body as it arrives (any
split), then :meth:`UrlencodedParser.close` at the end of the body. Both return
a list of :class:`Field` events; ``close()`` adds :class:`End`. ``feed(b"")`` is a no-op.

The body is ``name=value`` pairs joined by ``&``; ``+`` is a space and ``%XX``
a byte; the bytes are UTF-8. Empty pairs (``a=1&&b=2``) are skipped and a pair
without ``=`` has an empty value, as the standard says. Where the standard is
lenient the parser is strict: a ``%`` not followed by two hex digits, and bytes
that are not UTF-8 once decoded, are errors (400) rather than passed through or
replaced with U+FFFD. Limits are :class:`UrlencodedLimits`; exceeding one is 413.

Memory: the parser holds only the current, incomplete pair, bounded by
``max_field_size``; searching resumes after the bytes already searched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from tether.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "End",
    "Field",
    "MalformedUrlencoded",
    "TooManyFields",
    "UrlencodedBodyTooLarge",
    "UrlencodedError",
    "UrlencodedEvent",
    "UrlencodedFieldTooLarge",
    "UrlencodedLimitExceeded",
    "UrlencodedLimits",
    "UrlencodedParser",
    "UrlencodedUsageError",
    "parse_urlencoded",
]


@dataclass(frozen=True, slots=True)
class UrlencodedLimits:
    """Limits of one urlencoded body; each is checked before the offending bytes are kept."""

    #: Most fields (413 beyond).
    max_fields: int = 1000
    #: Largest single ``name=value`` pair, as sent (encoded) (413 beyond).
    max_field_size: int = 1024 * 1024
    #: Largest whole body (413 beyond); ``None`` for no limit. The parser itself keeps
    #: only one pair, but a caller collecting every field keeps them all.
    max_total_size: int | None = 16 * 1024 * 1024


class UrlencodedError(RemoteProtocolError):
    """Base of every error in an urlencoded body sent by the peer."""

    status_hint = 400


class MalformedUrlencoded(UrlencodedError):
    """400: a bad percent-escape, or a name or value that is not UTF-8."""


class UrlencodedLimitExceeded(UrlencodedError):
    """413: a :class:`UrlencodedLimits` value was exceeded; ``limit`` names it."""

    status_hint = 413
    limit: str = ""

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(f"{message} (UrlencodedLimits.{limit})")
        self.limit = limit


class TooManyFields(UrlencodedLimitExceeded):
    """413: more fields than ``max_fields``."""


class UrlencodedFieldTooLarge(UrlencodedLimitExceeded):
    """413: one pair exceeds ``max_field_size``."""


class UrlencodedBodyTooLarge(UrlencodedLimitExceeded):
    """413: the body exceeds ``max_total_size``."""


class UrlencodedUsageError(LocalProtocolError):
    """The parser was fed after ``close()`` or after an error."""


@dataclass(frozen=True, slots=True)
class Field:
    """One decoded ``name=value`` pair."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class End:
    """The end of the body."""


UrlencodedEvent = Field | End

_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_PAIR = re.compile(rb"[^&]+")
_DEFAULT_LIMITS = UrlencodedLimits()


def _decode(raw: bytes) -> str:
    if b"%" in raw:
        if _BAD_ESCAPE.search(raw) is not None:
            raise MalformedUrlencoded(f"bad percent-escape in {raw[:64]!r}")
        raw = unquote_to_bytes(raw.replace(b"+", b" "))
    elif b"+" in raw:
        raw = raw.replace(b"+", b" ")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedUrlencoded(f"not UTF-8 once decoded: {raw[:64]!r}") from None


class UrlencodedParser:
    """Streaming ``application/x-www-form-urlencoded`` parser; see the module docstring."""

    __slots__ = ("_buffer", "_closed", "_fields_left", "_limits", "_scan", "_total_left")

    def __init__(self, limits: UrlencodedLimits | None = None) -> None:
        """A parser for one body."""
        limits = _DEFAULT_LIMITS if limits is None else limits
        self._limits = limits
        self._buffer = bytearray()
        self._scan = 0
        self._closed = False
        self._fields_left = limits.max_fields
        self._total_left = -1 if limits.max_total_size is None else limits.max_total_size

    def feed(self, data: bytes) -> list[UrlencodedEvent]:
        """Parse the next piece of the body; returns the fields it completes."""
        if self._closed:
            raise UrlencodedUsageError("feed() after close() or after an error")
        if not data:
            return []
        try:
            if self._total_left >= 0:
                self._total_left -= len(data)
                if self._total_left < 0:
                    raise UrlencodedBodyTooLarge("body too large", limit="max_total_size")
            held = self._buffer
            if held:
                # Extended in place: copying the held pair into a new object for every
                # piece would cost quadratic time for a long field sent in small pieces.
                held += data
                if held.find(b"&", self._scan) < 0:
                    self._check_held(len(held))
                    return []
                data = bytes(held)
                held.clear()
            elif data.find(b"&") < 0:
                self._hold(data)
                return []
            if data.count(b"&") > 2 * self._fields_left + 64:
                return self._many_separators(data)
            pairs = data.split(b"&")
            self._hold(pairs.pop())
            return self._fields(pairs)
        except BaseException:
            self._closed = True
            self._buffer.clear()
            raise

    def close(self) -> list[UrlencodedEvent]:
        """Signal the end of the body: the last field, if any, and :class:`End`."""
        if self._closed:
            raise UrlencodedUsageError("close() after close() or after an error")
        self._closed = True
        held = bytes(self._buffer)
        self._buffer.clear()
        events = self._fields([held]) if held else []
        events.append(End())
        return events

    def _many_separators(self, data: bytes) -> list[UrlencodedEvent]:
        """``feed`` for a piece with far more ``&`` than fields may come: split, it would be
        a list entry per separator and an object per pair (a 16 MiB body of ``ab&`` held about
        230 MB before max_fields was checked). Only the non-empty pairs are taken, and no more
        than one past the limit, so the list is bounded by ``max_fields``."""
        pairs: list[bytes] = []
        rest = b""
        limit = self._fields_left
        for match in _PAIR.finditer(data):
            if match.end() == len(data):
                rest = match.group()  # not yet ended by "&": held for the next piece
                break
            pairs.append(match.group())
            if len(pairs) > limit:
                break  # _fields raises TooManyFields
        events = self._fields(pairs)
        self._hold(rest)
        return events

    def _hold(self, rest: bytes) -> None:
        self._check_held(len(rest))
        self._buffer += rest

    def _check_held(self, size: int) -> None:
        if size > self._limits.max_field_size:
            raise UrlencodedFieldTooLarge("field too large", limit="max_field_size")
        self._scan = size

    def _fields(self, pairs: list[bytes]) -> list[UrlencodedEvent]:
        events: list[UrlencodedEvent] = []
        max_size = self._limits.max_field_size
        left = self._fields_left
        for pair in pairs:
            if not pair:
                continue
            if len(pair) > max_size:
                raise UrlencodedFieldTooLarge("field too large", limit="max_field_size")
            left -= 1
            if left < 0:
                raise TooManyFields("too many fields", limit="max_fields")
            name, _, value = pair.partition(b"=")
            events.append(Field(_decode(name), _decode(value)))
        self._fields_left = left
        return events


def parse_urlencoded(body: bytes, limits: UrlencodedLimits | None = None) -> list[tuple[str, str]]:
    """All (name, value) pairs of a complete body, in order."""
    parser = UrlencodedParser(limits)
    events = parser.feed(body) + parser.close()
    return [(e.name, e.value) for e in events if isinstance(e, Field)]
