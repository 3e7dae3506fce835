"""Server-sent events: the ``text/event-stream`` format (WHATWG HTML, "Server-sent events" 9.2).

An encoder for servers and a parser for clients and tests, both pure:

- :func:`encode` turns one event (``data``, ``event``, ``id``, ``retry``, a ``comment``) into the
  bytes of one dispatched event; :func:`comment` makes a comment line, the usual keep-alive
  that proxies and browsers ignore; :data:`HEADERS` are the response fields a stream needs.
- :class:`EventStreamParser` reads a stream fed in arbitrary pieces and yields :class:`Event`
  objects exactly as a browser's ``EventSource`` would dispatch them.

The stream is always UTF-8 (the format has no other encoding). The encoder refuses what a
browser would read differently from what the caller meant, with a
:class:`~tether.errors.LocalProtocolError`: a line break inside ``event`` or ``id`` would start a
new field, a NUL in ``id`` makes browsers ignore the id, and ``retry`` must be digits. Line
breaks inside ``data`` are fine: every line becomes its own ``data:`` field and the client joins
them with ``\\n`` (a lone ``\\r`` or ``\\r\\n`` in data comes back as ``\\n``, as the format
normalises line ends).

The parser holds at most ``max_event_size`` bytes for the stream's peer (1 MiB by default):
one line, and the data lines of one event together. A stream that passes it (a line that never
ends, ``data:`` lines that never reach the empty line that dispatches them) raises
:class:`EventTooLarge` instead of growing without bound; the format itself sets no such limit,
so this is the one failure the parser has.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from tether.errors import LocalProtocolError, RemoteProtocolError

#: The fields of a ``text/event-stream`` response: its type, no caching, and no buffering by
#: nginx (``X-Accel-Buffering: no``), so that each event reaches the client when it is sent.
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)

#: The default ``max_event_size`` of :class:`EventStreamParser`.
MAX_EVENT_SIZE = 1024 * 1024

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LINE_END = re.compile(rb"\r\n|\r|\n")


def _lines(text: str) -> list[str]:
    return _LINE_BREAK.split(text)


def encode(
    data: str | None = None,
    *,
    event: str | None = None,
    id: str | None = None,  # the field's name in the format
    retry: int | None = None,
    comment: str | None = None,
) -> bytes:
    """The bytes of one event, ending with the empty line that dispatches it.

    ``data`` may span lines. ``event`` names the event type (the client's default is
    ``"message"``); ``id`` sets the client's last event id (``""`` resets it); ``retry`` sets the
    client's reconnection time in milliseconds; ``comment`` adds comment lines first. An event
    with only ``id`` or ``retry`` still updates the client; with no ``data`` a browser dispatches
    nothing.
    """
    out: list[str] = []
    if comment is not None:
        out.extend(":" + line if line else ":" for line in _lines(comment))
    if event is not None:
        if _LINE_BREAK.search(event):
            raise LocalProtocolError("an SSE event type cannot contain a line break")
        out.append("event: " + event)
    if id is not None:
        if _LINE_BREAK.search(id) or "\0" in id:
            raise LocalProtocolError("an SSE id cannot contain a line break or NUL")
        out.append("id: " + id if id else "id")
    if retry is not None:
        if type(retry) is not int or retry < 0:
            raise LocalProtocolError(f"SSE retry must be a whole number of milliseconds: {retry!r}")
        out.append(f"retry: {retry}")
    if data is not None:
        out.extend("data: " + line if line else "data" for line in _lines(data))
    if not out:
        raise LocalProtocolError("an SSE event needs at least one field")
    return ("\n".join(out) + "\n\n").encode("utf-8")


def comment(text: str = "") -> bytes:
    """A comment, ignored by clients: the usual keep-alive that stops proxies timing out."""
    return ("\n".join(":" + line if line else ":" for line in _lines(text)) + "\n\n").encode()


@dataclass(frozen=True, slots=True)
class Event:
    """One dispatched event, as ``EventSource`` hands it to a page."""

    #: The event type (``"message"`` unless the stream named one).
    type: str
    #: The data lines joined with ``"\\n"``.
    data: str
    #: The last event id in force when the event was dispatched.
    last_event_id: str


class EventTooLarge(RemoteProtocolError):
    """413: a line, or the data lines of one event, passed the parser's ``max_event_size``."""

    status_hint = 413


class EventStreamParser:
    """Parse a ``text/event-stream`` body fed in pieces, as a browser does.

    :meth:`feed` returns the events its bytes complete; :attr:`retry` is the last valid
    reconnection time (milliseconds) the stream set, or ``None``. The format defines a reading
    for every byte sequence (invalid UTF-8 becomes U+FFFD), so the only failure is the memory
    bound: a line longer than ``max_event_size`` bytes (line end excluded), or data lines of
    one event longer than that together (each counted whole, ``data:`` included), raise
    :class:`EventTooLarge` from the :meth:`feed` that passes it, before more is buffered. The
    parser is then spent: a later :meth:`feed` raises
    :class:`~tether.errors.LocalProtocolError`.
    """

    __slots__ = (
        "_data",
        "_data_size",
        "_failed",
        "_first",
        "_id",
        "_max",
        "_pending",
        "_scan",
        "_type",
        "retry",
    )

    def __init__(self, *, max_event_size: int = MAX_EVENT_SIZE) -> None:
        """Start at the beginning of a stream."""
        if max_event_size < 1:
            raise ValueError("max_event_size must be at least 1")
        self._max = max_event_size
        # The bytes of the line not yet complete. Extended in place, and searched only from
        # _scan (where no line end was found before): a long line fed in small pieces was
        # copied and searched again whole for every piece, quadratic in the line.
        self._pending = bytearray()
        self._scan = 0
        self._first = True
        self._data: list[str] = []
        # The bytes of the data lines in _data (each line whole, "data:" included).
        self._data_size = 0
        self._failed = False
        self._type = ""
        self._id = ""
        self.retry: int | None = None

    def feed(self, data: bytes) -> list[Event]:
        """Read the next piece of the stream; return the events it completes.

        Raises :class:`EventTooLarge` past ``max_event_size`` (events completed earlier in
        the same piece are lost with it: the stream is broken).
        """
        if self._failed:
            raise LocalProtocolError("feed() after an EventTooLarge error")
        buf = self._pending
        buf += data
        if self._first and buf:
            if len(buf) < 3 and b"\xef\xbb\xbf".startswith(buf):
                return []
            self._first = False
            if buf.startswith(b"\xef\xbb\xbf"):  # one leading BOM is dropped
                del buf[:3]
        events: list[Event] = []
        start = 0
        pos = self._scan
        limit = self._max
        search = _LINE_END.search
        while (match := search(buf, pos)) is not None:
            end = match.end()
            if end == len(buf) and end - match.start() == 1 and buf[-1] == 0x0D:
                pos = match.start()  # a CR at the end may be the start of a CRLF
                break
            size = match.start() - start
            if size > limit:
                self._fail("a line")
            event = self._line(buf[start : match.start()].decode("utf-8", "replace"), size)
            if event is not None:
                events.append(event)
            start = pos = end
        else:
            pos = len(buf)
        if pos - start > limit:
            self._fail("a line")  # a line not ended yet is already too long
        del buf[:start]
        self._scan = pos - start
        return events

    def _fail(self, what: str) -> None:
        self._failed = True
        self._pending.clear()
        self._data = []
        raise EventTooLarge(f"{what} of the event stream exceeds max_event_size ({self._max})")

    def _line(self, line: str, size: int) -> Event | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data_size += size
            if self._data_size > self._max:
                self._fail("the data lines of one event")
            self._data.append(value)
        elif name == "event":
            self._type = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> Event | None:
        data, self._data = self._data, []
        self._data_size = 0
        kind, self._type = self._type, ""
        if not data:
            return None
        return Event(kind or "message", "\n".join(data), self._id)


def iter_events(
    chunks: Iterator[bytes], *, max_event_size: int = MAX_EVENT_SIZE
) -> Iterator[Event]:
    """The events of a whole stream given as byte chunks (a convenience over the parser)."""
    parser = EventStreamParser(max_event_size=max_event_size)
    for chunk in chunks:
        yield from parser.feed(chunk)


__all__ = [
    "HEADERS",
    "MAX_EVENT_SIZE",
    "Event",
    "EventStreamParser",
    "EventTooLarge",
    "comment",
    "encode",
    "iter_events",
]
