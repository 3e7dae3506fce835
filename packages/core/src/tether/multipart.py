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

from collections.abc import Sequence

from tether._multipart_events import (
    _END,
    _PART_END,
    End,
    FieldTooLarge,
    FileTooLarge,
    IncompleteMultipart,
    InvalidBoundary,
    MalformedMultipart,
    MalformedPartHeaders,
    MultipartBodyTooLarge,
    MultipartError,
    MultipartEvent,
    MultipartLimitExceeded,
    MultipartLimits,
    MultipartUsageError,
    PartData,
    PartEnd,
    PartHeadersTooLarge,
    PartStart,
    TooManyParts,
    _new,
    _set_data,
)
from tether._multipart_headers import (
    _BOUNDARY_RE,
    _DEFAULT_LIMITS,
    _FAST_PART_RE,
    _NO_LIMIT,
    _SIMPLE_FIELD,
    _SIMPLE_FIELD_LEN,
    _UNKNOWN,
    _fast_start,
    _held_back,
    _parse_headers,
    _simple_start,
    parse_boundary,
)
from tether._multipart_state import (
    _AFTER_CLOSE,
    _AFTER_DELIMITER,
    _BODY,
    _CLOSED,
    _EPILOGUE,
    _HEADERS,
    _PREAMBLE,
    _REACHABLE,
    _State,
)

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

        At most ``_parts_left + 2`` cuts are made: each complete segment after a delimiter
        opens a part (or is the close delimiter, after which all is epilogue), so with that
        many the parts run out (413) or the body closes before the uncut rest is read. Cut
        at every delimiter, a piece of many tiny parts or a long epilogue of delimiters was a
        list entry and an object per delimiter (about 7 bytes of memory per byte fed).
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
                *buf[following + len(delimiter) :].split(delimiter, self._parts_left + 2),
            ]
        elif found == -1:
            segments = [buf]
        elif state is _BODY or state is _PREAMBLE:
            # What is held in these states is shorter than a delimiter: nothing is rescanned
            # beyond that lookbehind.
            segments = buf.split(delimiter, self._parts_left + 2)
        else:
            # A partial part head is held: search only where a new delimiter can be.
            held = len(self._buffer)
            i = buf.find(delimiter, max(0, held - len(delimiter) + 1))
            segments = (
                [buf]
                if i < 0
                else [buf[:i], *buf[i + len(delimiter) :].split(delimiter, self._parts_left + 2)]
            )
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
