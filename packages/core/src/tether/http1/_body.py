"""Reading message bodies: a fixed length, chunked (with trailers), or until close.

:class:`BodyReader` owns the receive buffer and reads a body from it; the
request reader (``_receive``) adds the head on top, and a client role can
read a response body with it alone. Set ``phase`` (and ``remaining`` for a
fixed length) and call :meth:`BodyReader.read_body` until it gives the
:class:`EndOfMessage`.

Partial input is appended to a ``bytearray`` and searched only from where the
last search stopped, so input fed byte by byte costs linear time, and every
limit is checked on the partial input before more memory is spent on it.
"""

from __future__ import annotations

from tether.errors import (
    BadRequest,
    ContentTooLarge,
    HeadTooLarge,
    IncompleteMessage,
    InvalidFraming,
    TooManyHeaders,
)
from tether.http1._abnf import CHUNK_EXT, FIELD_BLOCK, FIELD_LINE
from tether.http1._events import NEED_DATA, Data, EndOfMessage, Signal, new_data
from tether.http1._tables import (
    _CRLF,
    _FORBIDDEN_TRAILERS,
    _HEAD_TERMINATOR,
    _HEAD_TERMINATOR_SCAN_BACK,
    _HEX_BYTES,
    _LAST_CHUNK,
    _RUN_END,
    _RUNS_GET,
    EMPTY_EOM,
    P_CHUNK_CRLF,
    P_CHUNK_DATA,
    P_CHUNK_LINE,
    P_DONE,
    P_FIXED,
    P_HEAD,
    P_TRAILERS,
    P_UNTIL_CLOSE,
    Phase,
    _check_field_line_lengths,
    _check_line_endings,
    _chunk_size,
    _diagnose_fields,
    _PartialCheck,
    _refuse_framing_lookalikes,
)
from tether.limits import Limits


class BodyReader:
    """The receive buffer of one connection, and the readers of a message body.

    ``phase`` says which body is being read: ``FIXED`` (``remaining`` bytes
    left), ``CHUNK_LINE`` (a chunked body, from its first size line) or
    ``UNTIL_CLOSE`` (everything up to the peer's EOF, as for a response
    without framing). :meth:`read_body` returns the next :class:`Data`, the
    :class:`EndOfMessage` (``phase`` is then ``DONE``), or :data:`NEED_DATA`.
    """

    __slots__ = ("acc", "buf", "eof", "limits", "phase", "pos", "received", "remaining", "scan")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        # The buffer is ``buf[pos:]`` (bytes), or ``acc`` while partial input accumulates.
        self.buf = b""
        self.pos = 0
        self.acc: bytearray | None = None
        # Absolute index in ``acc`` up to which partial input has been searched and checked.
        self.scan = 0
        self.eof = False
        self.phase: Phase = P_HEAD
        # FIXED: body bytes still to come; CHUNK_DATA: bytes left of the current chunk.
        self.remaining = 0
        # Body bytes read so far (checked against Limits.max_body_size).
        self.received = 0

    # ---- buffer --------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Append received bytes (the caller handles EOF and the size guard)."""
        acc = self.acc
        if acc is not None:
            acc += data
        elif self.pos >= len(self.buf):
            self.buf = data
            self.pos = 0
        else:
            # Leftover plus new bytes: accumulate rather than re-concatenating bytes each time.
            acc = bytearray(self.buf[self.pos :] if self.pos else self.buf)
            acc += data
            self.acc = acc
            self.buf = b""
            self.pos = 0
            self.scan = 0

    def buffered(self) -> int:
        """Bytes received and not yet consumed."""
        if self.acc is not None:
            return len(self.acc)
        return len(self.buf) - self.pos

    def take_remaining(self) -> bytes:
        """Remove and return every unconsumed byte (after a protocol switch)."""
        self.materialize()
        out = self.buf[self.pos :]
        self.buf = b""
        self.pos = 0
        return out

    def materialize(self) -> None:
        """Turn accumulated partial input back into the bytes buffer."""
        if self.acc is not None:
            self.buf = bytes(self.acc)
            self.pos = 0
            self.acc = None
            self.scan = 0

    def _accumulate(self) -> bytearray:
        """Switch to accumulation for an incomplete element at ``pos``."""
        acc = self.acc
        if acc is None:
            acc = bytearray(self.buf[self.pos :] if self.pos else self.buf)
            self.acc = acc
            self.buf = b""
            self.pos = 0
            self.scan = 0
        return acc

    # ---- dispatch ------------------------------------------------------------------------------

    def read_body(self) -> Data | EndOfMessage | Signal:
        """Return the next body event of the current message, or NEED_DATA."""
        phase = self.phase
        if phase is P_FIXED:
            return self.read_fixed()
        if phase is P_UNTIL_CLOSE:
            return self.read_until_close()
        return self.read_chunked()

    def _search_accumulated(self, terminator: bytes, check: _PartialCheck) -> bool:
        """Search new accumulated input for ``terminator``; on success make it the buffer."""
        acc = self.acc
        assert acc is not None
        n = len(acc)
        start = self.scan
        if acc.find(terminator, start) >= 0:
            self.materialize()
            return True
        check(acc, start, n)
        # Keep enough bytes behind to find a terminator that straddles two receives, and to
        # see the byte before a LF.
        self.scan = max(0, n - len(terminator) + 1)
        if self.eof:
            raise IncompleteMessage("connection closed in the middle of a request")
        return False

    # ---- interpretation of the head ------------------------------------------------------------

    # ---- bodies --------------------------------------------------------------------------------

    def read_fixed(self) -> Data | EndOfMessage | Signal:
        remaining = self.remaining
        if remaining == 0:
            self.phase = P_DONE
            return EMPTY_EOM
        self.materialize()
        buf = self.buf
        pos = self.pos
        available = len(buf) - pos
        if available <= 0:
            if self.eof:
                raise IncompleteMessage(
                    f"connection closed with {remaining} bytes of the body missing"
                )
            return NEED_DATA
        if available <= remaining:
            data = buf[pos:] if pos else buf
            self.buf = b""
            self.pos = 0
            self.remaining = remaining - available
        else:
            data = buf[pos : pos + remaining]
            self.pos = pos + remaining
            self.remaining = 0
        self.received += len(data)
        return new_data(data)

    def read_until_close(self) -> Data | EndOfMessage | Signal:
        """A body that ends when the peer closes (RFC 9112 6.3 (8), responses only)."""
        self.materialize()
        buf = self.buf
        pos = self.pos
        if len(buf) <= pos:
            if self.eof:
                self.phase = P_DONE
                return EMPTY_EOM
            return NEED_DATA
        data = buf[pos:] if pos else buf
        self.buf = b""
        self.pos = 0
        received = self.received + len(data)
        max_body = self.limits.max_body_size
        if max_body is not None and received > max_body:
            raise ContentTooLarge(f"body is over the limit of {max_body} bytes")
        self.received = received
        return new_data(data)

    def read_chunked(self) -> Data | EndOfMessage | Signal:
        while True:
            phase = self.phase
            if phase is P_CHUNK_LINE:
                if self.acc is None and self.buf.startswith(_LAST_CHUNK, self.pos):
                    # The last chunk with no extension and an empty trailer section, whole:
                    # what _read_chunk_line and _read_trailers would conclude, in one step.
                    self.pos += len(_LAST_CHUNK)
                    self.phase = P_DONE
                    return EMPTY_EOM
                if not self._read_chunk_line():
                    return NEED_DATA
                if self.phase is P_TRAILERS:
                    return self._read_trailers()
            elif phase is P_CHUNK_CRLF:
                if self.acc is not None:
                    self.materialize()
                buf = self.buf
                pos = self.pos
                if len(buf) - pos < 2:
                    if len(buf) - pos == 1 and buf[pos] != 0x0D:
                        raise InvalidFraming("chunk data is not followed by CRLF")
                    if self.eof:
                        raise IncompleteMessage("connection closed inside a chunk")
                    if len(buf) - pos == 1:
                        self._accumulate()
                    return NEED_DATA
                if buf[pos] != 0x0D or buf[pos + 1] != 0x0A:
                    raise InvalidFraming("chunk data is not followed by CRLF")
                self.pos = pos + 2
                self.phase = P_CHUNK_LINE
                continue
            elif phase is P_TRAILERS:
                return self._read_trailers()
            # P_CHUNK_DATA
            if self.acc is not None:
                self.materialize()
            buf = self.buf
            pos = self.pos
            available = len(buf) - pos
            if available <= 0:
                if self.eof:
                    raise IncompleteMessage("connection closed inside a chunk")
                return NEED_DATA
            remaining = self.remaining
            if available < remaining:
                data = buf[pos:] if pos else buf
                self.buf = b""
                self.pos = 0
                self.remaining = remaining - available
                return new_data(data)
            end = pos + remaining
            self.remaining = 0
            # The CRLF after the chunk is usually here already: take it now.
            if not buf.startswith(_CRLF, end):
                self.pos = end
                self.phase = P_CHUNK_CRLF
                return new_data(buf[pos:end])
            self.phase = P_CHUNK_LINE
            next_line = end + 2
            more = self._next_whole_chunk(buf, next_line)
            if more is None:
                self.pos = next_line
                return new_data(buf[pos:end])
            # Several whole chunks are buffered: give them as one Data event.
            pieces = [buf[pos:end]]
            while more is not None:
                start, stop = more
                pieces.append(buf[start:stop])
                next_line = stop + 2
                more = self._next_whole_chunk(buf, next_line)
            self.pos = next_line
            return new_data(b"".join(pieces))

    def read_whole_chunked(self) -> Data | None:
        """The whole body as one Data when it is buffered as plain chunks, else None.

        A small body sent at once is the common case. One loop walks its chunks
        (hex size, CRLF, data, CRLF) up to a last chunk ``0`` with an empty
        trailer section. A run of chunks of one power-of-two size is read by
        one match of that size's pattern (``_RUNS``); in a run of any other
        size each chunk costs one ``startswith``, which checks the CRLF after a
        chunk's data and the next size line together. The phase then becomes
        FIXED with nothing remaining, so the next event is the EndOfMessage.
        Anything else (extensions, trailers, an incomplete or bad chunk) leaves
        the state untouched for ``read_chunked``, which gives the precise error.
        """
        buf = self.buf
        pos = self.pos
        startswith = buf.startswith
        # A size line of more digits than allowed has no CRLF within this reach.
        reach = self.limits.max_chunk_size_digits + 2
        pieces: list[bytes] = []
        while True:
            end = buf.find(b"\r\n", pos, pos + reach)
            if end < 0:
                return None
            line = buf[pos:end]
            run = _RUNS_GET(line)
            if run is not None:
                m = run(buf, pos)
                if m is None:
                    return None
                pos = m.end()
                if m.lastindex == _RUN_END:
                    if pieces:
                        pieces += m.groups(b"")
                        data = b"".join(pieces)
                    else:
                        data = b"".join(m.groups(b""))
                    break
                pieces += m.groups(b"")
                continue
            size = _chunk_size(line)
            if not size:
                # Not plain hex, or a last chunk spelled other than "0" CRLF CRLF.
                return None
            start = end + 2
            stop = start + size
            pieces.append(buf[start:stop])
            # CRLF after the data, then the same size line: the next chunk of the run.
            separator = b"\r\n" + line + b"\r\n"
            step = len(separator) + size
            while startswith(separator, stop):
                pieces.append(buf[stop + len(separator) : stop + step])
                stop += step
            if not startswith(b"\r\n", stop):
                return None
            pos = stop + 2
            if startswith(_LAST_CHUNK, pos):
                pos += len(_LAST_CHUNK)
                data = b"".join(pieces)
                break
        # The connection calls this only at the first chunk: nothing was received before.
        received = len(data)
        max_body = self.limits.max_body_size
        if max_body is not None and received > max_body:
            raise ContentTooLarge(f"chunked body is over the limit of {max_body} bytes")
        self.received = received
        self.pos = pos
        self.phase = P_FIXED
        self.remaining = 0
        return new_data(data)

    def _next_whole_chunk(self, buf: bytes, pos: int) -> tuple[int, int] | None:
        """``(start, stop)`` of the data of a plain, non-empty chunk wholly in ``buf`` at ``pos``.

        Only a size line of hex digits qualifies; anything else (the last chunk,
        extensions, an incomplete or bad line) is left to the ordinary path.
        """
        line_end = buf.find(_CRLF, pos, pos + self.limits.max_chunk_size_digits + 2)
        if line_end <= pos:
            return None
        line = buf[pos:line_end]
        size = _chunk_size(line)
        if size is None:
            return None
        start = line_end + 2
        stop = start + size
        if size == 0 or not buf.startswith(_CRLF, stop):
            return None
        received = self.received + size
        max_body = self.limits.max_body_size
        if max_body is not None and received > max_body:
            raise ContentTooLarge(f"chunked body is over the limit of {max_body} bytes")
        self.received = received
        return start, stop

    def _max_chunk_line(self) -> int:
        return self.limits.max_chunk_size_digits + self.limits.max_chunk_extension

    def _check_partial_chunk_line(self, acc: bytearray, start: int, stop: int) -> None:
        if stop > self._max_chunk_line() + 1:
            raise InvalidFraming("chunk line is too long (size digits or extension over limit)")
        _check_line_endings(acc, start, stop)

    def _read_chunk_line(self) -> bool:
        """Parse ``chunk-size [ chunk-ext ] CRLF``; False when more bytes are needed."""
        if self.acc is not None and not self._search_accumulated(
            _CRLF, self._check_partial_chunk_line
        ):
            return False
        buf = self.buf
        pos = self.pos
        end = buf.find(_CRLF, pos)
        if end < 0:
            acc = self._accumulate()
            self._check_partial_chunk_line(acc, 0, len(acc))
            self.scan = max(0, len(acc) - 1)
            if self.eof:
                raise IncompleteMessage("connection closed inside a chunk line")
            return False
        limits = self.limits
        line = buf[pos:end]
        size = None
        if len(line) <= limits.max_chunk_size_digits:
            size = _chunk_size(line)
        if size is None:
            size = self._parse_chunk_line_general(line)
        self.pos = end + 2
        if size == 0:
            self.phase = P_TRAILERS
            return True
        received = self.received + size
        max_body = limits.max_body_size
        if max_body is not None and received > max_body:
            raise ContentTooLarge(f"chunked body is over the limit of {max_body} bytes")
        self.received = received
        self.remaining = size
        self.phase = P_CHUNK_DATA
        return True

    def _parse_chunk_line_general(self, line: bytes) -> int:
        """A chunk line with extensions, or a bad one: check every rule, return the size."""
        limits = self.limits
        digits = len(line) - len(line.lstrip(_HEX_BYTES))
        if digits == 0:
            _check_line_endings(line, 0, len(line))
            raise InvalidFraming("chunk size is missing or not hexadecimal")
        if digits > limits.max_chunk_size_digits:
            raise InvalidFraming(
                f"chunk size has more than {limits.max_chunk_size_digits} hex digits"
            )
        if len(line) - digits > limits.max_chunk_extension:
            raise InvalidFraming(
                f"chunk extension is over the limit of {limits.max_chunk_extension} bytes"
            )
        if CHUNK_EXT.fullmatch(line, digits) is None:
            _check_line_endings(line, 0, len(line))
            raise InvalidFraming("malformed chunk extension")
        return int(line[:digits], 16)

    def _check_partial_trailers(self, acc: bytearray, start: int, stop: int) -> None:
        if stop > self.limits.max_trailer_size:
            raise HeadTooLarge(
                f"trailer section is over the limit of {self.limits.max_trailer_size} bytes"
            )
        _check_line_endings(acc, start, stop)

    def _read_trailers(self) -> EndOfMessage | Signal:
        if self.acc is not None:
            acc = self.acc
            # An empty trailer section is just CRLF; anything else ends with CRLF CRLF.
            if not acc.startswith(_CRLF) and not self._search_accumulated(
                _HEAD_TERMINATOR, self._check_partial_trailers
            ):
                return NEED_DATA
            self.materialize()
        buf = self.buf
        pos = self.pos
        if buf.startswith(_CRLF, pos):
            self.pos = pos + 2
            self.phase = P_DONE
            return EMPTY_EOM
        end = buf.find(_HEAD_TERMINATOR, pos)
        if end < 0:
            trailer_acc = self._accumulate()
            self._check_partial_trailers(trailer_acc, 0, len(trailer_acc))
            self.scan = max(0, len(trailer_acc) - _HEAD_TERMINATOR_SCAN_BACK)
            if self.eof:
                raise IncompleteMessage("connection closed inside the trailer section")
            return NEED_DATA
        limits = self.limits
        if end + 4 - pos > limits.max_trailer_size:
            raise HeadTooLarge(
                f"trailer section is over the limit of {limits.max_trailer_size} bytes"
            )
        if FIELD_BLOCK.fullmatch(buf, pos, end + 2) is None:
            _diagnose_fields(buf, pos, end + 2, limits, what="trailer")
            raise BadRequest("malformed trailer field")  # pragma: no cover
        trailers = [(n.lower(), v) for n, v in FIELD_LINE.findall(buf, pos, end + 2)]
        _refuse_framing_lookalikes([name for name, _ in trailers])
        for name, _ in trailers:
            if name in _FORBIDDEN_TRAILERS:
                raise BadRequest(f"{name.decode()} is not allowed in a trailer section")
        if len(trailers) > limits.max_header_count:
            raise TooManyHeaders(f"more than {limits.max_header_count} trailer fields")
        if end + 2 - pos > limits.max_header_line:
            _check_field_line_lengths(buf, pos, end + 2, limits.max_header_line)
        self.pos = end + 4
        self.phase = P_DONE
        return EndOfMessage(trailers)
