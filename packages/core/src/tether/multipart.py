"""A streaming ``multipart/form-data`` parser (RFC 7578 on the RFC 2046 framing).

Usage: create a :class:`MultipartParser` with the boundary (see
:func:`parse_boundary`), call :meth:`MultipartParser.feed` with each piece of
the body as it arrives (any split), then :meth:`MultipartParser.close` at the
end of the body. Both return a list of events:

* :class:`PartStart` -- a part's headers, ``name``, ``filename``, content type;
* :class:`PartData` -- a piece of the part's content (never accumulated);
* :class:`PartEnd` -- the part is complete;
* :class:`End` -- the close delimiter was seen; the epilogue is ignored.

Events are immutable and may be shared: the PartStart of a text field whose head
is exactly as browsers write it is reused whenever that head comes again.

``feed(b"")`` is a no-op; the end of the body is signalled only by ``close()``,
which raises :class:`IncompleteMultipart` if the close delimiter never came.

Memory: the parser holds at most one delimiter's length of body lookbehind, or
one part's headers (bounded by ``MultipartLimits.max_header_size``). Searching
resumes where it stopped, so no byte is searched twice except that lookbehind.

Errors are :class:`MultipartError` subclasses: malformed input is 400, an
exceeded limit is 413 and names the limit in ``limit``. After an error the
parser is unusable.
"""

from __future__ import annotations

import enum
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tether._params import decode_ext_value, parse_parameters
from tether.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "End",
    "FieldTooLarge",
    "FileTooLarge",
    "IncompleteMultipart",
    "InvalidBoundary",
    "MalformedMultipart",
    "MalformedPartHeaders",
    "MultipartBodyTooLarge",
    "MultipartError",
    "MultipartEvent",
    "MultipartLimitExceeded",
    "MultipartLimits",
    "MultipartParser",
    "MultipartUsageError",
    "PartData",
    "PartEnd",
    "PartHeadersTooLarge",
    "PartStart",
    "TooManyParts",
    "parse_boundary",
    "parser_for",
]


# ---- limits -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MultipartLimits:
    """Limits of one multipart body; each is checked before the offending bytes are kept.

    ``None`` means "no limit" and is allowed only where nothing is buffered.
    """

    #: Most parts in the body (413 beyond).
    max_parts: int = 1000
    #: Largest header section of one part, boundary-line padding included (413 beyond).
    max_header_size: int = 8 * 1024
    #: Most header fields in one part (413 beyond).
    max_header_count: int = 16
    #: Largest content of a field, i.e. a part without ``filename`` (413 beyond).
    max_field_size: int = 1024 * 1024
    #: Largest content of a file part; ``None`` for no limit (the content is streamed).
    max_file_size: int | None = None
    #: Largest whole body, preamble and epilogue included; ``None`` for no limit.
    max_total_size: int | None = None


# ---- errors -----------------------------------------------------------------------------------


class MultipartError(RemoteProtocolError):
    """Base of every error in a multipart body sent by the peer."""

    status_hint = 400


class MalformedMultipart(MultipartError):
    """400: the body breaks the RFC 2046 / RFC 7578 syntax."""


class MalformedPartHeaders(MalformedMultipart):
    """400: a part's header section is malformed or lacks a valid Content-Disposition."""


class IncompleteMultipart(MalformedMultipart):
    """400: the body ended before the close delimiter."""


class InvalidBoundary(MalformedMultipart):
    """400: the Content-Type lacks a valid ``boundary`` (RFC 2046 section 5.1.1)."""


class MultipartLimitExceeded(MultipartError):
    """413: a :class:`MultipartLimits` value was exceeded; ``limit`` names it."""

    status_hint = 413
    limit: str = ""

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(f"{message} (MultipartLimits.{limit})")
        self.limit = limit


class TooManyParts(MultipartLimitExceeded):
    """413: more parts than ``max_parts``."""


class PartHeadersTooLarge(MultipartLimitExceeded):
    """413: a part's header section exceeds ``max_header_size`` or ``max_header_count``."""


class FieldTooLarge(MultipartLimitExceeded):
    """413: a field's content exceeds ``max_field_size``."""


class FileTooLarge(MultipartLimitExceeded):
    """413: a file's content exceeds ``max_file_size``."""


class MultipartBodyTooLarge(MultipartLimitExceeded):
    """413: the body exceeds ``max_total_size``."""


class MultipartUsageError(LocalProtocolError):
    """The parser was fed after ``close()`` or after an error."""


# ---- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartStart:
    """A part begins.

    ``headers`` are (lowercase name, value) pairs as received. ``name`` comes
    from Content-Disposition; ``filename`` from ``filename*`` (RFC 8187) when
    present, else ``filename``, else ``None`` (a non-file field). Values are
    returned as sent: no percent-decoding and no path stripping.
    ``content_type`` is the part's Content-Type value, or ``None``.
    """

    name: str
    filename: str | None
    content_type: str | None
    headers: tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True, slots=True)
class PartData:
    """A piece of the current part's content."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PartEnd:
    """The current part is complete."""


@dataclass(frozen=True, slots=True)
class End:
    """The close delimiter was seen: the body is complete."""


MultipartEvent = PartStart | PartData | PartEnd | End

_PART_END = PartEnd()
# PartData is built on the hot path without the frozen dataclass __init__ (about 2x faster).
_new = object.__new__


def _setter(cls: type, field: str) -> Callable[[object, object], None]:
    """The slot descriptor's setter: how a frozen slotted instance is filled in."""
    setter: Callable[[object, object], None] = vars(cls)[field].__set__
    return setter


_set_data = _setter(PartData, "data")
_END = End()


# ---- states -----------------------------------------------------------------------------------


class _State(enum.Enum):
    PREAMBLE = "preamble"  # before the first delimiter
    AFTER_DELIMITER = "after delimiter"  # "--" closes, else padding and CRLF
    HEADERS = "headers"  # a part's header section, up to the empty line
    BODY = "body"  # a part's content, up to the next delimiter
    AFTER_CLOSE = "after close"  # transport padding after the close delimiter
    EPILOGUE = "epilogue"  # ignored until close()
    CLOSED = "closed"  # closed or failed


_PREAMBLE = _State.PREAMBLE
_AFTER_DELIMITER = _State.AFTER_DELIMITER
_HEADERS = _State.HEADERS
_BODY = _State.BODY
_AFTER_CLOSE = _State.AFTER_CLOSE
_EPILOGUE = _State.EPILOGUE
_CLOSED = _State.CLOSED

#: Legal transitions (any state may also go to CLOSED on error or close()).
_TRANSITIONS: dict[_State, frozenset[_State]] = {
    _PREAMBLE: frozenset({_AFTER_DELIMITER}),
    _AFTER_DELIMITER: frozenset({_HEADERS, _AFTER_CLOSE}),
    _HEADERS: frozenset({_BODY}),
    _BODY: frozenset({_AFTER_DELIMITER}),
    _AFTER_CLOSE: frozenset({_EPILOGUE}),
    _EPILOGUE: frozenset(),
    _CLOSED: frozenset(),
}


def _reachable(state: _State) -> frozenset[_State]:
    """States one segment can lead to from ``state`` (it may pass through several)."""
    seen = {state}
    todo = [state]
    while todo:
        for nxt in _TRANSITIONS[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return frozenset(seen)


# Checked (under assert) after every segment: the code moves only along _TRANSITIONS.
_REACHABLE = {state: _reachable(state) for state in _State}


# ---- header parsing ---------------------------------------------------------------------------

_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_HEADER_LINE_RE = re.compile(rb"(" + _TOKEN + rb"):([^\x00-\x08\x0a-\x1f\x7f]*)")
# The shape every browser sends, matched in one go: the common case skips general parsing.
_PLAIN_NAME = rb'"([^"\\\x00-\x1f\x7f]*)"'
_FAST_HEADERS_RE = re.compile(
    rb"Content-Disposition: (form-data; name="
    + _PLAIN_NAME
    + rb"(?:; filename="
    + _PLAIN_NAME
    + rb")?)(?:\r\nContent-Type: ("
    + _TOKEN
    + rb"/"
    + _TOKEN
    + rb"))?"
)
# The same, from the CRLF ending the boundary line through the empty line: the hot path
# for forms goes from one delimiter to the next part's content with this one match.
_FAST_PART_RE = re.compile(b"\r\n" + _FAST_HEADERS_RE.pattern + b"\r\n\r\n")
_SIMPLE_FIELD = b'\r\nContent-Disposition: form-data; name="'
_SIMPLE_FIELD_LEN = len(_SIMPLE_FIELD)
_BOUNDARY_RE = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_IDENTITY_CTE = frozenset({b"7bit", b"8bit", b"binary"})
_NO_LIMIT = sys.maxsize
_DEFAULT_LIMITS = MultipartLimits()
# "The delimiter has not been searched for yet" (find() itself returns -1 or an index).
_UNKNOWN = -2


def parse_boundary(content_type: bytes | str) -> bytes:
    """The boundary of a ``multipart/form-data`` Content-Type value.

    Raises :class:`InvalidBoundary` unless the type is ``multipart/form-data``
    and the boundary is 1-70 characters of RFC 2046 ``bchars`` not ending in a space.
    """
    if isinstance(content_type, bytes):
        try:
            content_type = content_type.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidBoundary("Content-Type is not ASCII") from None
    parsed = parse_parameters(content_type.strip(" \t"))
    if parsed is None or parsed[0] != "multipart/form-data":
        raise InvalidBoundary("Content-Type is not a valid multipart/form-data value")
    boundary = parsed[1].get("boundary")
    if boundary is None or _BOUNDARY_RE.fullmatch(boundary) is None:
        raise InvalidBoundary("missing or invalid multipart boundary")
    return boundary.encode("ascii")


def parser_for(
    headers: Sequence[tuple[bytes, bytes]], limits: MultipartLimits | None = None
) -> MultipartParser:
    """A parser for a request with these header fields (its Content-Type gives the boundary).

    Raises :class:`InvalidBoundary` if there is no single multipart/form-data Content-Type.
    """
    values = [value for name, value in headers if name.lower() == b"content-type"]
    if len(values) != 1:
        raise InvalidBoundary("expected exactly one Content-Type field")
    return MultipartParser(parse_boundary(values[0]), limits)


def _decode(value: bytes, what: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPartHeaders(f"{what} is not valid UTF-8") from None


def _parse_disposition(value: bytes) -> tuple[str, str | None]:
    """(name, filename) from a general Content-Disposition value."""
    parsed = parse_parameters(_decode(value, "Content-Disposition"), lenient_backslash=True)
    if parsed is None:
        raise MalformedPartHeaders("malformed Content-Disposition")
    kind, params = parsed
    if kind != "form-data":
        raise MalformedPartHeaders(f"Content-Disposition type {kind!r} is not form-data")
    name = params.get("name")
    if name is None:
        raise MalformedPartHeaders("Content-Disposition has no name parameter")
    filename = params.get("filename")
    extended = params.get("filename*")
    if extended is not None:
        # RFC 8187 section 4.2 / RFC 6266 section 4.3: the extended form wins.
        filename = decode_ext_value(extended)
        if filename is None:
            raise MalformedPartHeaders("malformed filename* (RFC 8187) parameter")
    return name, filename


def _fast_start(fast: re.Match[bytes]) -> PartStart:
    """A PartStart from a match of the browser-shaped head (_FAST_HEADERS_RE's groups)."""
    name, filename, ctype = fast.group(2, 3, 4)
    if ctype is None:
        headers: tuple[tuple[bytes, bytes], ...] = ((b"content-disposition", fast[1]),)
        content_type = None
    else:
        headers = ((b"content-disposition", fast[1]), (b"content-type", ctype))
        content_type = ctype.decode("ascii")
    return PartStart(
        _decode(name, "name"),
        None if filename is None else _decode(filename, "filename"),
        content_type,
        headers,
    )


def _parse_headers(block: bytes, limits: MultipartLimits) -> PartStart:
    """A PartStart from one part's header section (CRLF-separated lines, no final CRLF)."""
    fast = _FAST_HEADERS_RE.fullmatch(block)
    if fast is not None:
        return _fast_start(fast)
    if not block:
        raise MalformedPartHeaders("part has no Content-Disposition header")
    lines = block.split(b"\r\n")
    if len(lines) > limits.max_header_count:
        raise PartHeadersTooLarge("too many part header fields", limit="max_header_count")
    pairs: list[tuple[bytes, bytes]] = []
    disposition: bytes | None = None
    content_type = None
    for line in lines:
        match = _HEADER_LINE_RE.fullmatch(line)
        if match is None:
            # Also refuses obs-fold continuation lines (RFC 9112 section 5.2 deprecates them).
            raise MalformedPartHeaders(f"malformed part header line {line[:64]!r}")
        field = match[1].lower()
        value = match[2].strip(b" \t")
        if field == b"content-disposition":
            if disposition is not None:
                raise MalformedPartHeaders("repeated Content-Disposition")
            disposition = value
        elif field == b"content-type":
            if content_type is not None:
                raise MalformedPartHeaders("repeated Content-Type")
            content_type = _decode(value, "Content-Type")
        elif field == b"content-transfer-encoding" and value.lower() not in _IDENTITY_CTE:
            # RFC 7578 section 4.7: senders must not use it; we cannot decode it, so refuse.
            raise MalformedPartHeaders("Content-Transfer-Encoding other than 7bit/8bit/binary")
        pairs.append((field, value))
    if disposition is None:
        raise MalformedPartHeaders("part has no Content-Disposition header")
    name, filename = _parse_disposition(disposition)
    return PartStart(name, filename, content_type, tuple(pairs))


# PartStart events of browser-shaped text-field heads, by raw name, kept per parser (one
# request body): a form that repeats a field name (``tag=a&tag=b`` as multipart) reuses the
# event and skips decoding and validating the name. Never shared between parsers, so nothing
# one client sends is held, or changes how fast another's body is read. Bounded: a full
# cache is cleared, and only short names are kept (about 256 x 200 bytes per parser at most).
_SIMPLE_STARTS_MAX = 256
_SIMPLE_NAME_MAX = 64


def _simple_start(raw: bytes, starts: dict[bytes, PartStart]) -> PartStart | None:
    """The PartStart for a head ``name="<raw>"``, if ``raw`` needs no unquoting and is UTF-8."""
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None  # the general path raises the right error
    if not name.isprintable() or "\\" in name:
        return None
    start = PartStart(
        name, None, None, ((b"content-disposition", b'form-data; name="' + raw + b'"'),)
    )
    if len(raw) <= _SIMPLE_NAME_MAX:
        if len(starts) >= _SIMPLE_STARTS_MAX:
            starts.clear()
        starts[raw] = start
    return start


def _held_back(buf: bytes, start: int, delimiter: bytes) -> int:
    """Where a possible partial delimiter begins in ``buf[start:]``; ``len(buf)`` if none."""
    n = len(buf)
    k = buf.find(b"\r", max(start, n - len(delimiter) + 1))
    while k >= 0:
        if delimiter.startswith(buf[k:]):
            return k
        k = buf.find(b"\r", k + 1)
    return n


# ---- the parser -------------------------------------------------------------------------------


class MultipartParser:
    """Streaming ``multipart/form-data`` parser; see the module docstring for the protocol."""

    __slots__ = (
        "_buffer",
        "_complete",
        "_delimiter",
        "_field_limit",
        "_file_limit",
        "_limits",
        "_part_is_file",
        "_part_left",
        "_parts_left",
        "_preamble",
        "_scan",
        "_starts",
        "_state",
        "_total_left",
    )

    def __init__(self, boundary: bytes, limits: MultipartLimits | None = None) -> None:
        """Parse a body delimited by ``boundary`` (the raw parameter, without leading dashes)."""
        if _BOUNDARY_RE.fullmatch(boundary.decode("latin-1")) is None:
            raise InvalidBoundary(f"invalid multipart boundary {boundary!r}")
        limits = _DEFAULT_LIMITS if limits is None else limits
        self._limits = limits
        self._delimiter = b"\r\n--" + boundary
        # The first delimiter may open the body without a CRLF: pretend one came before it.
        self._buffer = b"\r\n"
        self._scan = 0
        self._state = _PREAMBLE
        # Whether the body had bytes before its first delimiter (a preamble).
        self._preamble = False
        self._complete = False
        # Budgets count down, so each piece costs one subtraction and one comparison.
        self._total_left = _NO_LIMIT if limits.max_total_size is None else limits.max_total_size
        self._parts_left = limits.max_parts
        self._part_left = _NO_LIMIT
        self._part_is_file = False
        self._field_limit = limits.max_field_size
        self._file_limit = _NO_LIMIT if limits.max_file_size is None else limits.max_file_size
        self._starts: dict[bytes, PartStart] = {}

    @property
    def complete(self) -> bool:
        """True once the close delimiter and its line end were seen."""
        return self._complete

    def feed(self, data: bytes) -> list[MultipartEvent]:
        """Parse the next piece of the body; returns the events it completes."""
        n = len(data)
        left = self._total_left - n
        if left < 0:
            self._state = _CLOSED
            raise MultipartBodyTooLarge("multipart body too large", limit="max_total_size")
        state = self._state
        if state is _BODY and n and not self._buffer:
            # Fast path for file content: one search, and a piece that holds no delimiter
            # (nor the start of one at its end) becomes one PartData without a copy.
            self._total_left = left
            delimiter = self._delimiter
            found = data.find(delimiter)
            if found < 0:
                window = len(delimiter) - 1
                k = data.find(b"\r", n - window if n > window else 0)
                if k < 0 or _held_back(data, k, delimiter) == n:
                    left = self._part_left - n
                    if left >= 0:
                        self._part_left = left
                        event = _new(PartData)
                        _set_data(event, data)
                        return [event]
        else:
            if state is _CLOSED:
                raise MultipartUsageError("feed() after close() or after an error")
            self._total_left = left
            if not n or state is _EPILOGUE:
                return []
            found = _UNKNOWN
        try:
            if state is _PREAMBLE and self._buffer == b"\r\n":
                dash_boundary = self._delimiter[2:]
                if data.startswith(dash_boundary):
                    # The usual opening: no preamble. Skip the pretended CRLF and its copy.
                    self._buffer = b""
                    start = len(dash_boundary)
                    found = data.find(self._delimiter, start)
                    return self._parse(data, _AFTER_DELIMITER, found, start)
            return self._parse(self._buffer + data if self._buffer else data, state, found)
        except BaseException:
            self._state = _CLOSED
            self._buffer = b""
            raise

    def close(self) -> list[MultipartEvent]:
        """Signal the end of the body; raises :class:`IncompleteMultipart` if it was cut short."""
        state = self._state
        if state is _CLOSED:
            if self._complete:
                return []
            raise MultipartUsageError("close() after close() or after an error")
        self._state = _CLOSED
        held, self._buffer = self._buffer, b""
        if state is _EPILOGUE:
            return []
        if state is _AFTER_CLOSE and not held.strip(b" \t"):
            # The body ended right after "--boundary--" (and optional padding): complete.
            self._complete = True
            return [_END]
        raise IncompleteMultipart(f"multipart body ended in state {state.value!r}")

    def _data(self, piece: bytes) -> PartData:
        """A PartData for ``piece``, counted against the part's limit."""
        left = self._part_left - len(piece)
        if left < 0:
            if not self._part_is_file:
                raise FieldTooLarge("form field too large", limit="max_field_size")
            raise FileTooLarge("file too large", limit="max_file_size")
        self._part_left = left
        event = _new(PartData)
        _set_data(event, piece)
        return event

    def _parse(self, buf: bytes, state: _State, found: int, start: int = 0) -> list[MultipartEvent]:
        """Parse ``buf`` (held bytes plus new data) from ``state``.

        ``buf`` is cut at every delimiter; each segment but the last is complete (a
        delimiter follows it). ``found`` is the first delimiter's index if already known;
        parsing starts at ``start``.
        """
        delimiter = self._delimiter
        if found >= 0:
            rest = found + len(delimiter)
            following = buf.find(delimiter, rest)
            if following < 0:
                # One delimiter (a file part ends in this piece): parse the bytes after it
                # in place rather than copying them into a segment of their own.
                self._buffer = b""
                events: list[MultipartEvent] = []
                state = self._segment(buf[:found], state, True, events, start)
                if state is _AFTER_DELIMITER:
                    self._scan = 0
                    state = self._segment(buf, _AFTER_DELIMITER, False, events, rest)
                self._state = state
                return events
            segments = [
                buf[:found],
                buf[rest:following],
                *buf[following + len(delimiter) :].split(delimiter),
            ]
        elif found == -1:
            segments = [buf]
        elif state is _BODY or state is _PREAMBLE:
            # What is held in these states is shorter than a delimiter: nothing is rescanned
            # beyond that lookbehind.
            segments = buf.split(delimiter)
        else:
            # A partial part head is held: search only where a new delimiter can be.
            held = len(self._buffer)
            i = buf.find(delimiter, max(0, held - len(delimiter) + 1))
            segments = [buf] if i < 0 else [buf[:i], *buf[i + len(delimiter) :].split(delimiter)]
        self._buffer = b""
        events = []
        last = len(segments) - 1
        before = state
        state = self._segment(segments[0], state, last > 0, events, start)
        assert state in _REACHABLE[before], (before, state)
        if last == 0:
            self._state = state
            return events
        extend = events.extend
        starts = self._starts
        new, set_data = _new, _set_data
        part_end, simple_field, simple_len = _PART_END, _SIMPLE_FIELD, _SIMPLE_FIELD_LEN
        max_header_size, field_limit = self._limits.max_header_size, self._field_limit
        parts_left = self._parts_left
        for seg in segments[1:last]:
            if state is not _AFTER_DELIMITER:
                break  # the epilogue: everything after the close delimiter is ignored
            if seg.startswith(simple_field):
                # The hot path for forms: a complete part whose head is exactly what
                # browsers send for a text field, checked with a few C calls.
                q = seg.find(b'"', simple_len)
                if seg.startswith(b'"\r\n\r\n', q) and q < max_header_size:
                    raw = seg[simple_len:q]
                    head = starts.get(raw)
                    if head is None:
                        head = _simple_start(raw, starts)
                    if head is not None:
                        parts_left -= 1
                        if parts_left < 0:
                            raise TooManyParts("too many multipart parts", limit="max_parts")
                        size = len(seg) - q - 5
                        if size:
                            if size > field_limit:
                                raise FieldTooLarge("form field too large", limit="max_field_size")
                            event = new(PartData)
                            set_data(event, seg[q + 5 :])
                            extend((head, event, part_end))
                        else:
                            extend((head, part_end))
                        continue
            self._parts_left = parts_left
            state = self._segment(seg, _AFTER_DELIMITER, True, events)
            assert state in _REACHABLE[_AFTER_DELIMITER], state
            parts_left = self._parts_left
        self._parts_left = parts_left
        if state is _AFTER_DELIMITER:
            self._scan = 0
            state = self._segment(segments[last], _AFTER_DELIMITER, False, events)
            assert state in _REACHABLE[_AFTER_DELIMITER], state
        self._state = state
        return events

    def _segment(
        self,
        seg: bytes,
        state: _State,
        complete: bool,
        events: list[MultipartEvent],
        pos: int = 0,
    ) -> _State:
        """Parse the delimiter-free segment ``seg[pos:]`` from ``state``; returns the next state.

        A complete segment is followed by a delimiter. An incomplete one is the end of
        what was fed: its unparsed rest is kept in ``self._buffer``.
        """
        append = events.append
        limits = self._limits
        while True:
            if state is _BODY:
                if complete:
                    if len(seg) > pos:
                        append(self._data(seg[pos:] if pos else seg))
                    append(_PART_END)
                    return _AFTER_DELIMITER
                end = _held_back(seg, pos, self._delimiter)
                if end > pos:
                    append(self._data(seg if end == len(seg) and not pos else seg[pos:end]))
                self._buffer = seg[end:]
                return _BODY
            if state is _AFTER_DELIMITER:
                # After "--boundary": "--" closes the body; else padding, CRLF, headers.
                fast = _FAST_PART_RE.match(seg, pos)
                if fast is not None and fast.end() - pos - 6 <= limits.max_header_size:
                    append(self._start(_fast_start(fast)))
                    pos = fast.end()
                    state = _BODY
                    continue
                two = seg[pos : pos + 2]
                if two == b"\r\n":
                    line_end = pos
                elif two == b"--":
                    if self._preamble and self._parts_left == limits.max_parts:
                        # RFC 2046 5.1.1: a dash-boundary is followed by a body part. With
                        # content before it and no part, the opening delimiter was damaged
                        # and the close delimiter would end the body with every field lost.
                        # (An empty form, "--boundary--" and nothing else, stays valid.)
                        raise MalformedMultipart(
                            "multipart body has a preamble but no body part "
                            "(is the first boundary line damaged?)"
                        )
                    pos += 2
                    state = _AFTER_CLOSE
                    continue
                else:
                    # Transport padding (RFC 2046 section 5.1.1): LWSP before the CRLF.
                    line_end = seg.find(b"\r\n", pos)
                    padding = seg[pos:] if line_end < 0 else seg[pos:line_end]
                    stripped = padding.lstrip(b" \t")
                    if line_end >= 0 or complete:
                        ok = not stripped and line_end >= 0
                    else:
                        ok = stripped in (b"", b"\r", b"-")
                    if not ok:
                        raise MalformedMultipart("unexpected bytes after a multipart boundary")
                    if line_end < 0:
                        if len(padding) > limits.max_header_size:
                            raise PartHeadersTooLarge(
                                "boundary padding too long", limit="max_header_size"
                            )
                        self._buffer = padding
                        return _AFTER_DELIMITER
                pos = line_end
                self._scan = 0
                state = _HEADERS
            if state is _HEADERS:
                # seg[pos:pos + 2] is the CRLF ending the boundary line.
                j = seg.find(b"\r\n\r\n", pos + self._scan)
                if j < 0:
                    rest = len(seg) - pos
                    if rest - 2 > limits.max_header_size:
                        raise PartHeadersTooLarge(
                            "part header section too large", limit="max_header_size"
                        )
                    if complete:
                        raise MalformedPartHeaders("part header section not terminated")
                    self._buffer = seg[pos:]
                    self._scan = max(0, rest - 3)
                    return _HEADERS
                if j - pos - 2 > limits.max_header_size:
                    raise PartHeadersTooLarge(
                        "part header section too large", limit="max_header_size"
                    )
                append(self._start(_parse_headers(seg[pos + 2 : j] if j > pos else b"", limits)))
                pos = j + 4
                state = _BODY
                continue
            if state is _AFTER_CLOSE:
                # RFC 2046: close-delimiter transport-padding [CRLF epilogue]
                line_end = seg.find(b"\r\n", pos)
                padding = seg[pos:] if line_end < 0 else seg[pos:line_end]
                stripped = padding.lstrip(b" \t")
                if line_end < 0 and not complete:
                    if stripped not in (b"", b"\r"):
                        raise MalformedMultipart("unexpected bytes after the close delimiter")
                    if len(padding) > limits.max_header_size:
                        raise PartHeadersTooLarge(
                            "boundary padding too long", limit="max_header_size"
                        )
                    self._buffer = padding
                    return _AFTER_CLOSE
                if stripped:
                    raise MalformedMultipart("unexpected bytes after the close delimiter")
                # Complete with only padding: the CRLF opening the next delimiter ends the line.
                append(_END)
                self._buffer = b""
                self._complete = True
                return _EPILOGUE
            if state is _PREAMBLE:
                if complete:
                    if len(seg) > pos:
                        self._preamble = True
                    return _AFTER_DELIMITER
                end = _held_back(seg, pos, self._delimiter)
                if end > pos:
                    self._preamble = True
                self._buffer = seg[end:]
                return _PREAMBLE
            return state  # EPILOGUE

    def _start(self, start: PartStart) -> PartStart:
        """Count the part ``start`` opens and set its content limit."""
        self._parts_left -= 1
        if self._parts_left < 0:
            raise TooManyParts("too many multipart parts", limit="max_parts")
        self._part_is_file = start.filename is not None
        self._part_left = self._file_limit if self._part_is_file else self._field_limit
        return start
