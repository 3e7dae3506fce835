"""Reading requests: head, Content-Length and chunked bodies, trailers.

The reader owns the receive buffer. A complete head arriving in one piece (the
common case) is parsed with one ``fullmatch`` for the request line, and its
field lines are checked in C, column by column. No table here is filled from
what a client sends, so nothing one client sends changes how another's bytes
are read (or how fast). Partial input is appended to a
``bytearray`` and searched only from where the last search stopped, so input
fed byte by byte costs linear time, and every limit is checked on the partial
input before more memory is spent on it.
"""

from __future__ import annotations

import enum
import itertools
import re
from collections.abc import Callable, Iterable

from tether.errors import (
    BadRequest,
    ContentTooLarge,
    HeaderLineTooLong,
    HeadTooLarge,
    IncompleteMessage,
    InvalidFraming,
    RequestLineTooLong,
    TooManyHeaders,
    UnsupportedTransferCoding,
    UnsupportedVersion,
)
from tether.http1._abnf import (
    ABSOLUTE_FORM,
    AUTHORITY_FORM,
    CHUNK_EXT,
    FIELD_BLOCK,
    FIELD_LINE,
    HOST,
    REQUEST_LINE_ANY_VERSION,
    TOKEN,
)
from tether.http1._events import NEED_DATA, Data, EndOfMessage, Request, Signal
from tether.limits import Limits


class Phase(enum.Enum):
    """What the reader expects next."""

    __hash__ = object.__hash__

    HEAD = "HEAD"
    FIXED = "FIXED"  # Content-Length body (also the empty body)
    CHUNK_LINE = "CHUNK_LINE"
    CHUNK_DATA = "CHUNK_DATA"
    CHUNK_CRLF = "CHUNK_CRLF"
    TRAILERS = "TRAILERS"
    DONE = "DONE"  # the request is complete; waiting for the next cycle


# Enum members as module globals: Phase.X is an attribute look-up through the enum
# metaclass (about ten times slower than a global) on paths run for every request.
P_HEAD = Phase.HEAD
P_FIXED = Phase.FIXED
P_CHUNK_LINE = Phase.CHUNK_LINE
P_CHUNK_DATA = Phase.CHUNK_DATA
P_CHUNK_CRLF = Phase.CHUNK_CRLF
P_TRAILERS = Phase.TRAILERS
P_DONE = Phase.DONE

# The request line, checked whole by one fullmatch over the head, which also hands back the
# field lines after it as one group: the target is visible US-ASCII (RFC 9112 3.2), and only
# HTTP/1.0 and HTTP/1.1 pass (anything else goes to _diagnose_head for a 400 or a 505).
_REQUEST_HEAD = re.compile(
    rb"(" + TOKEN + rb") ([\x21-\x7e]+) HTTP/1\.([01])(?:\r\n(.*))?", re.DOTALL
).fullmatch


# Byte tables for bytes.translate, which maps through a 256-byte table in one C loop (a
# deletion set would rebuild its table on every call). A byte a check refuses maps to NUL, so
# "no NUL in the result" is the check (NUL itself is refused everywhere).
def _table(allowed: bytes) -> bytes:
    return bytes(b if b in allowed else 0 for b in range(256))


# Bytes allowed inside a field line: HTAB, SP, VCHAR, obs-text. CR and LF appear only in the
# CRLF pairs the head was split on; a bare one maps to NUL.
_LINE_TABLE = _table(bytes(b for b in range(256) if b == 0x09 or 0x20 <= b != 0x7F))
# RFC 9110 5.6.2: tchar (field names).
_TCHAR_TABLE = _table(
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def _parse_fields(lines: list[bytes]) -> list[tuple[bytes, bytes]] | None:
    """``(lowercase name, value)`` of every field line (CRLF excluded), or None if one is invalid.

    RFC 9112 5.1: field-line = field-name ":" OWS field-value OWS. The name is
    tchar up to the first colon, so whitespace before the colon and obs-fold
    (a line starting with SP or HTAB) fail; every byte of a line is HTAB, SP,
    VCHAR or obs-text, so a bare CR or LF or any other control byte fails.
    The checks run column by column, each one C call over all the lines, and
    the names are lowercased in one call over all of them. Nothing is
    remembered from one head to the next.
    """
    if len(lines) <= _FEW_LINES:
        return _parse_few_fields(lines)
    names, colons, values = zip(*map(_partition, lines, _COLONS))
    joined = b"\n".join(names)
    # One pass over the names: every byte must be tchar (others become NUL), and the result,
    # lowercase without "-", "_" and ".", shows any name that looks like a framing field.
    folded = joined.translate(_NAME_CHECK_TABLE, _NAME_SEPARATORS)
    if (
        b"" in colons
        or b"" in names
        or b"\0" in folded
        or b"\0" in b"".join(lines).translate(_LINE_TABLE)
    ):
        return None
    lowered = joined.lower().split(b"\n")
    if b"contentlength" in folded or b"transferencoding" in folded:
        # Some name may fold to a framing name: fine if as many names are that name exactly.
        folded_names = folded.split(b"\n")
        if folded_names.count(b"contentlength") != lowered.count(
            b"content-length"
        ) or folded_names.count(b"transferencoding") != lowered.count(b"transfer-encoding"):
            _refuse_framing_lookalikes(lowered)
    # The values hold no control byte but HTAB, so strip() strips exactly the OWS (SP, HTAB).
    return list(zip(lowered, map(_strip, values)))


def _parse_few_fields(lines: list[bytes]) -> list[tuple[bytes, bytes]] | None:
    """``_parse_fields`` line by line: the same checks, cheaper for one or two lines."""
    fields = []
    for line in lines:
        name, colon, value = line.partition(b":")
        if (
            not colon
            or not name
            or b"\0" in name.translate(_TCHAR_TABLE)
            or b"\0" in value.translate(_LINE_TABLE)
        ):
            return None
        name = name.lower()
        # Shorter names cannot fold to a framing field name (13 and 16 letters).
        if len(name) >= 13:
            _refuse_framing_lookalikes((name,))
        fields.append((name, value.strip()))
    return fields


# Heads with at most this many field lines are read line by line (_parse_few_fields): below
# it the column-wise calls of _parse_fields cost more than they save.
_FEW_LINES = 2
_partition = bytes.partition
_strip = bytes.strip
_COLONS = itertools.repeat(b":")
# tchar lowercased, and LF (the separator _parse_fields joins names with); others map to NUL.
_NAME_CHECK_TABLE = bytes(b if b == 0x0A else _TCHAR_TABLE[b] for b in range(256)).lower()
_HEX_BYTES = b"0123456789abcdefABCDEF"


def _chunk_size(line: bytes) -> int | None:
    """The size a chunk-size line of only hex digits gives, else None."""
    # Only hex digits: int() alone would also take "0x", "_", signs and spaces.
    if not line or line.translate(None, _HEX_BYTES):
        return None
    return int(line, 16)


_VISIBLE_ASCII = bytes(range(0x21, 0x7F))

# Runs of chunks of one power-of-two size (what a sender chunking from a fixed buffer sends),
# read by one regex match per run of up to _RUN_DEPTH chunks: the match checks every size
# line and CRLF of the run and hands back each chunk's data as a group. The patterns are made
# at import (a few milliseconds), keyed by size lines no client chooses, and never change, so
# what one client sends cannot change how fast another's body is read.
_RUN_DEPTH = 8
_RUN_END = _RUN_DEPTH + 1  # the group that matches when the last chunk follows the run
_RUN_MAX_SIZE_LOG2 = 20

_RunMatch = Callable[[bytes, int], "re.Match[bytes] | None"]


def _run_pattern(line: bytes, size: int) -> _RunMatch:
    """``match`` of a pattern for 1 to _RUN_DEPTH whole chunks of ``size``, size line ``line``."""
    tile = re.escape(line) + rb"\r\n(.{%d})\r\n" % size
    pattern = tile
    for _ in range(_RUN_DEPTH - 1):
        pattern = tile + b"(?:" + pattern + b")?"
    # Then the last chunk with an empty trailer section, if it follows: its empty group is
    # the last one, so ``lastindex`` tells whether it matched, and it adds nothing to the data.
    return re.compile(pattern + rb"(?:0\r\n\r\n())?", re.DOTALL).match


_RUNS: dict[bytes, _RunMatch] = {
    b"%x" % (1 << n): _run_pattern(b"%x" % (1 << n), 1 << n) for n in range(_RUN_MAX_SIZE_LOG2 + 1)
}
_RUNS_GET = _RUNS.get


# Events are frozen dataclasses, whose generated __init__ sets each field through
# object.__setattr__. On the hottest path an event is built as an instance of a plain twin
# class with the same slots, then given its real class (the layouts match, so CPython allows
# the assignment): a third of the cost.
class _RequestTwin:
    __slots__ = ("headers", "http_version", "method", "target")
    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]
    http_version: bytes


class _DataTwin:
    __slots__ = ("data",)
    data: bytes


def _make_data(data: bytes) -> Data:
    event = _DataTwin()
    event.data = data
    event.__class__ = Data  # type: ignore[assignment]
    return event  # type: ignore[return-value]


def _connection_options(value: bytes) -> tuple[bool, bool, bool]:
    """(close, keep-alive, upgrade) named in a Connection field value."""
    options = _COMMON_CONNECTION.get(value)
    if options is not None:
        return options
    tokens = {token.strip(b" \t") for token in value.lower().split(b",")}
    return (b"close" in tokens, b"keep-alive" in tokens, b"upgrade" in tokens)


# The Connection values clients send nearly always, as written at import; never changed.
_COMMON_CONNECTION: dict[bytes, tuple[bool, bool, bool]] = {
    b"keep-alive": (False, True, False),
    b"Keep-Alive": (False, True, False),
    b"close": (True, False, False),
    b"Close": (True, False, False),
    b"Upgrade": (False, False, True),
    b"upgrade": (False, False, True),
    b"keep-alive, Upgrade": (False, True, True),
}


def _transfer_codings(value: bytes) -> list[bytes]:
    """The lowercase codings listed in a Transfer-Encoding value."""
    return [coding.strip(b" \t").lower() for coding in value.split(b",")]


# "Transfer-Encoding: chunked" alone, as _interpret's look-up path reads it (never mutated).
_JUST_CHUNKED = [b"chunked"]

_V11 = b"1.1"
_V10 = b"1.0"
EMPTY_EOM = EndOfMessage()
# Rarely sent fields the look-up path of _interpret leaves to the general loop.
_RARE_FIELDS = frozenset((b"expect", b"upgrade"))
_FRAMING_FIELDS = frozenset(
    (
        b"host",
        b"content-length",
        b"transfer-encoding",
        b"connection",
        b"expect",
        b"upgrade",
        b"content-type",
    )
)
# Fields that must not arrive as trailers. RFC 9110 6.5.1: fields needed "prior to receiving
# the content, such as those that describe message framing, routing, authentication, request
# modifiers, response controls, or content format" cannot be processed as trailers; a
# recipient MAY discard them, we refuse the message so no later component can merge them.
_FORBIDDEN_TRAILERS = frozenset(
    (
        b"content-length",
        b"transfer-encoding",
        b"trailer",
        b"host",
        b"connection",
        b"keep-alive",
        b"upgrade",
        b"te",
        b"expect",
        b"content-type",
        b"content-encoding",
        b"content-range",
        b"range",
        b"authorization",
        b"proxy-authorization",
        b"cookie",
    )
)
# RFC 9112 2.2: a server "SHOULD ignore at least one empty line (CRLF) received prior to the
# request-line". We ignore a few, and no more, so that a stream of CRLFs is not free to send.
_MAX_LEADING_EMPTY_LINES = 4
# How far into a partial request line _check_partial_head looks for a bad method byte.
_METHOD_WINDOW = 32

# A check run on partial input: (accumulated bytes, first new index, end).
_PartialCheck = Callable[[bytearray, int, int], None]

_HEAD_TERMINATOR = b"\r\n\r\n"
_HEAD_TERMINATOR_SCAN_BACK = len(_HEAD_TERMINATOR) - 1
_CRLF = b"\r\n"
_LAST_CHUNK = b"0\r\n\r\n"


class RequestReader:
    """Parses the request side of one server connection.

    ``read()`` returns the next event or :data:`NEED_DATA`; it never returns an
    event past the current request's :class:`EndOfMessage` until the connection
    moves ``phase`` back to HEAD for the next cycle.
    """

    __slots__ = (
        "acc",
        "buf",
        "empty_lines",
        "eof",
        "expect_continue",
        "head_request",
        "http10",
        "keep_alive_requested",
        "limits",
        "phase",
        "pos",
        "received",
        "remaining",
        "scan",
        "upgrade",
    )

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        # The buffer is ``buf[pos:]`` (bytes), or ``acc`` while partial input accumulates.
        self.buf = b""
        self.pos = 0
        self.acc: bytearray | None = None
        # Absolute index in ``acc`` up to which partial input has been searched and checked.
        self.scan = 0
        self.eof = False
        # Empty lines skipped before the current request line (RFC 9112 2.2).
        self.empty_lines = 0
        self.phase = P_HEAD
        self.remaining = 0
        self.received = 0
        self.http10 = False
        self.keep_alive_requested = True
        self.expect_continue = False
        self.upgrade = False
        # Whether the head read last (even one refused, or still partial) is a HEAD request:
        # no response to it may carry a body.
        self.head_request = False

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

    # ---- cycle ---------------------------------------------------------------------------------

    # ---- dispatch ------------------------------------------------------------------------------

    def read_body(self) -> Data | EndOfMessage | Signal:
        """Return the next body event of the current request, or NEED_DATA."""
        if self.phase is P_FIXED:
            return self.read_fixed()
        return self.read_chunked()

    # ---- head ----------------------------------------------------------------------------------

    def read_head_general(self) -> Request | Signal:
        """Parse a request head that is partial, accumulated, or after empty lines.

        (The connection handles a whole head in one piece by calling ``parse_head``.)
        """
        if self.acc is not None and not self._search_accumulated(
            _HEAD_TERMINATOR, self._check_partial_head
        ):
            return NEED_DATA
        buf = self.buf
        pos = self.pos
        if buf.startswith(_CRLF, pos):
            pos = self._skip_empty_lines(buf, pos)
        end = buf.find(_HEAD_TERMINATOR, pos)
        if end < 0:
            self.pos = pos
            if pos >= len(buf):
                # Nothing buffered: stay on the bytes buffer, so the next receive takes the
                # fast path (and starts the head timer).
                if self.eof:
                    raise IncompleteMessage("connection closed in the middle of a request head")
                return NEED_DATA
            acc = self._accumulate()
            self._check_partial_head(acc, 0, len(acc))
            self.scan = max(0, len(acc) - _HEAD_TERMINATOR_SCAN_BACK)
            if self.eof:
                raise IncompleteMessage("connection closed in the middle of a request head")
            return NEED_DATA
        return self.parse_head(buf, pos, end)

    def parse_head(self, buf: bytes, pos: int, end: int) -> Request:
        """Parse the complete head ``buf[pos:end + 4]`` (``end`` is where CRLF CRLF starts).

        The size limits are checked first; then the request line by one
        ``fullmatch``, and the field lines, split on CRLF, by ``_parse_fields``.
        This accepts exactly what the grammar in ``_abnf.REQUEST_HEAD`` accepts
        (a property test holds the two together); whatever it refuses goes to
        ``_diagnose_head`` for the precise error.
        """
        limits = self.limits
        self.head_request = buf.startswith(b"HEAD ", pos)
        m = (
            _REQUEST_HEAD(buf, pos, end)
            if end - pos <= limits._small_head or end + 4 - pos <= limits.max_head_size
            else None
        )
        if m is not None:
            method, target, minor, block = m.groups()
            lines = block.split(b"\r\n") if block is not None else []
            if (
                len(lines) <= limits.max_header_count
                and (
                    end - pos <= limits._small_head
                    or (
                        len(method) + len(target) + 10 <= limits.max_request_line
                        and max(map(len, lines), default=0) <= limits.max_header_line
                    )
                )
                and (headers := _parse_fields(lines) if lines else []) is not None
            ):
                self.pos = end + 4
                return self._interpret(method, target, headers, minor == b"0")
        _diagnose_head(buf, pos, end + 2, limits)
        raise BadRequest("malformed request head")  # pragma: no cover - diagnose raises

    def _skip_empty_lines(self, buf: bytes, pos: int) -> int:
        # Count across reads: the lines may arrive one by one.
        while buf.startswith(_CRLF, pos):
            self.empty_lines += 1
            if self.empty_lines > _MAX_LEADING_EMPTY_LINES:
                raise BadRequest("too many empty lines before the request line")
            pos += 2
        return pos

    def _check_partial_head(self, acc: bytearray, start: int, stop: int) -> None:
        """Check an incomplete head: size limits, the request line, bare CR and LF."""
        limits = self.limits
        # Leading empty lines are allowed, a few; they are not part of the head.
        lead = 0
        while acc.startswith(_CRLF, lead):
            lead += 2
            if self.empty_lines + lead // 2 > _MAX_LEADING_EMPTY_LINES:
                raise BadRequest("too many empty lines before the request line")
        self.head_request = acc.startswith(b"HEAD ", lead)
        if stop - lead > limits.max_head_size:
            raise HeadTooLarge(f"request head is over the limit of {limits.max_head_size} bytes")
        first_line_end = acc.find(_CRLF, lead, lead + limits.max_request_line + 2)
        # The last byte may be the CR of the line's CRLF, so a line at the limit may hold one more.
        if first_line_end < 0 and stop - lead > limits.max_request_line + 1:
            raise RequestLineTooLong(
                f"request line is over the limit of {limits.max_request_line} bytes"
            )
        # An HTTP/2 preface shows early: give the version error without waiting for more.
        if first_line_end < 0 and acc.startswith(b"PRI * HTTP/2.0", lead):
            raise UnsupportedVersion("HTTP/2 connection preface received on HTTP/1.1")
        # So does a method that cannot be one (a TLS handshake sent to a plain port starts with
        # 0x16): refuse it now rather than wait for the head timeout. Only the first bytes are
        # looked at, so that input fed byte by byte is not checked over and over.
        if start < lead + _METHOD_WINDOW:
            method = bytes(acc[lead : min(stop, lead + _METHOD_WINDOW)]).partition(b" ")[0]
            # A lone CR may begin an empty line before the request line (RFC 9112 2.2).
            if method != b"\r" and b"\0" in method.translate(_TCHAR_TABLE):
                raise BadRequest("invalid character in the method")
        _check_line_endings(acc, max(start, lead), stop)

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

    def _interpret(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], http10: bool
    ) -> Request:
        """Apply RFC 9112's framing and routing rules to a parsed head; return the Request."""
        content_length: bytes | None
        transfer_encoding: list[bytes] | None
        fields = dict(headers)
        if len(fields) == len(headers) and _RARE_FIELDS.isdisjoint(fields):
            # No field repeated, no Expect or Upgrade: the common head, read by look-ups.
            content_length = fields.get(b"content-length")
            if content_length is not None and (
                not content_length.isdigit() or len(content_length) > 18
            ):
                _check_content_length(content_length)
            value = fields.get(b"transfer-encoding")
            transfer_encoding = None
            if value is not None:
                if value == b"chunked":
                    transfer_encoding = _JUST_CHUNKED
                else:
                    transfer_encoding = _transfer_codings(value)
            value = fields.get(b"connection")
            if value is None:
                connection_close = connection_keep_alive = connection_upgrade = False
            else:
                connection_close, connection_keep_alive, connection_upgrade = _connection_options(
                    value
                )
            expect_continue = upgrade_field = False
            value = fields.get(b"host")
            host_count = 0
            if value is not None:
                host_count = 1
                _check_host(value)
        else:
            host_count = 0
            content_types = 0
            content_length = None
            transfer_encoding = None
            connection_close = False
            connection_keep_alive = False
            connection_upgrade = False
            expect_continue = False
            upgrade_field = False
            for name, value in [field for field in headers if field[0] in _FRAMING_FIELDS]:
                if name == b"host":
                    host_count += 1
                    if host_count > 1:
                        # RFC 9112 3.2: respond 400 to "any request message that contains more than
                        # one Host header field line".
                        raise BadRequest("more than one Host field")
                    _check_host(value)
                elif name == b"content-length":
                    if content_length is not None:
                        # RFC 9110 8.6 lets a recipient accept repeated identical values; we take
                        # the stricter choice it also allows and reject the message.
                        raise InvalidFraming("more than one Content-Length field")
                    _check_content_length(value)
                    content_length = value
                elif name == b"transfer-encoding":
                    codings = _transfer_codings(value)
                    if transfer_encoding is None:
                        transfer_encoding = codings
                    else:
                        transfer_encoding.extend(codings)
                elif name == b"connection":
                    close, keep_alive, upgrade = _connection_options(value)
                    connection_close |= close
                    connection_keep_alive |= keep_alive
                    connection_upgrade |= upgrade
                elif name == b"content-type":
                    content_types += 1
                    if content_types > 1:
                        # RFC 9110 5.3: Content-Type is a singleton field; two of them leave
                        # components free to disagree about the body's format.
                        raise BadRequest("more than one Content-Type field")
                elif name == b"expect":
                    # RFC 9110 10.1.1: an HTTP/1.0 request's 100-continue "MUST" be ignored.
                    if value.lower() == b"100-continue" and not http10:
                        expect_continue = True
                else:  # upgrade
                    upgrade_field = True

        # Host: RFC 9112 3.2, "A server MUST respond with a 400 (Bad Request) status code to any
        # HTTP/1.1 request message that lacks a Host header field".
        if host_count == 0 and not http10:
            raise BadRequest("HTTP/1.1 request without a Host field")

        # Request-target form: RFC 9112 3.2.
        if method == b"CONNECT":
            if AUTHORITY_FORM.fullmatch(target) is None:
                raise BadRequest("CONNECT needs an authority-form target (host:port)")
        elif target[0] == 0x2F:  # "/": origin-form
            pass
        elif target == b"*":
            if method != b"OPTIONS":
                raise BadRequest("asterisk-form target is only allowed with OPTIONS")
        else:
            # RFC 9112 3.2.2: "When an origin server receives a request with an absolute-form of
            # request-target, the origin server MUST ignore the received Host header field (if
            # any) and instead use the host information of the request-target." The event says
            # so: its host field becomes the target's authority, so no application can read a
            # Host that routed nothing.
            authority = _absolute_authority(target)
            for i, (name, _) in enumerate(headers):
                if name == b"host":
                    headers[i] = (b"host", authority)
                    break
            else:
                headers.append((b"host", authority))

        # Framing: RFC 9112 6.1 and 6.3.
        if transfer_encoding is not None:
            if http10:
                # RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding "MUST" be treated as
                # having faulty framing.
                raise InvalidFraming("Transfer-Encoding in an HTTP/1.0 request")
            if content_length is not None:
                # RFC 9112 6.1: a server MAY reject a message with both; we always do, since
                # this is the classic request-smuggling vector.
                raise InvalidFraming("both Transfer-Encoding and Content-Length")
            if transfer_encoding is not _JUST_CHUNKED:
                if not transfer_encoding or transfer_encoding[-1] != b"chunked":
                    # RFC 9112 6.3 (4): chunked not final -> 400 and close.
                    raise InvalidFraming("chunked is not the final transfer coding")
                if transfer_encoding.count(b"chunked") > 1:
                    raise InvalidFraming("chunked applied more than once")
                if len(transfer_encoding) > 1:
                    bad = b", ".join(transfer_encoding[:-1]).decode("latin-1")
                    raise UnsupportedTransferCoding(f"transfer coding not implemented: {bad}")
            self.received = 0
            self.phase = P_CHUNK_LINE
        else:
            length = int(content_length) if content_length is not None else 0
            max_body = self.limits.max_body_size
            if max_body is not None and length > max_body:
                raise ContentTooLarge(
                    f"Content-Length {length} is over the limit of {max_body} bytes"
                )
            self.remaining = length
            self.received = 0
            self.phase = P_FIXED

        self.http10 = http10
        self.empty_lines = 0
        self.keep_alive_requested = not connection_close and (connection_keep_alive or not http10)
        self.expect_continue = expect_continue
        self.upgrade = upgrade_field and connection_upgrade
        request = _RequestTwin()
        request.method = method
        request.target = target
        request.headers = headers
        request.http_version = _V10 if http10 else _V11
        request.__class__ = Request  # type: ignore[assignment]
        return request  # type: ignore[return-value]

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
        return _make_data(data)

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
                return _make_data(data)
            end = pos + remaining
            self.remaining = 0
            # The CRLF after the chunk is usually here already: take it now.
            if not buf.startswith(_CRLF, end):
                self.pos = end
                self.phase = P_CHUNK_CRLF
                return _make_data(buf[pos:end])
            self.phase = P_CHUNK_LINE
            next_line = end + 2
            more = self._next_whole_chunk(buf, next_line)
            if more is None:
                self.pos = next_line
                return _make_data(buf[pos:end])
            # Several whole chunks are buffered: give them as one Data event.
            pieces = [buf[pos:end]]
            while more is not None:
                start, stop = more
                pieces.append(buf[start:stop])
                next_line = stop + 2
                more = self._next_whole_chunk(buf, next_line)
            self.pos = next_line
            return _make_data(b"".join(pieces))

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
        event = _DataTwin()
        event.data = data
        event.__class__ = Data  # type: ignore[assignment]
        return event  # type: ignore[return-value]

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


def _check_host(value: bytes) -> None:
    """Refuse an invalid Host value (RFC 9112 3.2, RFC 3986 3.2.2)."""
    # The common host: letters, digits, "." and "-", then maybe ":" and digits. Such a value
    # matches HOST, so only the others need the regular expression.
    host, _, port = value.partition(b":")
    if host and not host.translate(None, _PLAIN_HOST) and (not port or port.isdigit()):
        return
    if HOST.fullmatch(value) is None:
        raise BadRequest("invalid Host field value")


_PLAIN_HOST = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-"


# RFC 9110 5.1 and RFC 9112 6: the framing fields are exactly Content-Length and
# Transfer-Encoding. A name that differs from one of them only in "_", "." or "-" (or their
# absence) is a valid token, yet a proxy or gateway that maps "_" to "-" (CGI-style
# environments do, and so do some proxies) would take it for the real field and frame the
# message differently than we do: request smuggling. We are stricter than the RFCs ask and
# refuse the message.
_NAME_SEPARATORS = b"-_."
_FRAMING_NAMES = {b"contentlength": b"content-length", b"transferencoding": b"transfer-encoding"}


def _refuse_framing_lookalikes(names: Iterable[bytes]) -> None:
    """Refuse a lowercase field name that only looks like Content-Length or Transfer-Encoding."""
    for name in names:
        real = _FRAMING_NAMES.get(name.translate(None, _NAME_SEPARATORS))
        if real is not None and name != real:
            raise InvalidFraming(
                f"field name {name.decode('ascii')!r} looks like {real.decode('ascii')!r}: "
                "refused so that no proxy can take it for a framing field"
            )


def _absolute_authority(target: bytes) -> bytes:
    """The authority of an absolute-form target (RFC 9112 3.2.2), or BadRequest."""
    if ABSOLUTE_FORM.fullmatch(target) is None:
        raise BadRequest("request target is not in origin-form or absolute-form")
    scheme, _, rest = target.partition(b"://")
    if scheme.lower() not in (b"http", b"https"):
        # A server is not a proxy: it answers for http and https resources only (RFC 9110 4.2).
        raise BadRequest(f"scheme {scheme.decode('ascii')!r} is not http or https")
    # RFC 3986 3.2: the authority ends at the first "/", "?" or "#".
    authority = _AUTHORITY_END.split(rest, 1)[0]
    if b"@" in authority:
        # RFC 9110 4.2.4: a recipient SHOULD treat userinfo in an http(s) target as an error.
        raise BadRequest("userinfo in the request target")
    if not authority or HOST.fullmatch(authority) is None or authority.startswith(b":"):
        # RFC 9110 4.2.1: an http URI with an empty host "MUST" be rejected as invalid.
        raise BadRequest("invalid or empty authority in an absolute-form target")
    return authority


_AUTHORITY_END = re.compile(rb"[/?#]")


def _check_content_length(value: bytes) -> None:
    """Refuse a Content-Length value that is not a plain decimal of at most 18 digits."""
    if not value.isdigit():
        raise InvalidFraming("Content-Length is not a non-negative decimal integer")
    if len(value) > 18:
        raise InvalidFraming("Content-Length has too many digits")


# ---- diagnostics: only run once a fast check has failed -----------------------------------------


def _check_line_endings(buf: bytes | bytearray, start: int, stop: int) -> None:
    """Refuse a bare LF, or a CR not followed by LF, in ``buf[start:stop]``.

    RFC 9112 2.2 lets a recipient accept a bare LF as a line terminator and
    replace a bare CR; both leniencies enable request smuggling, so we refuse.
    A CR in the last byte may still be followed by its LF and is left alone.
    """
    i = buf.find(b"\n", start, stop)
    while i >= 0:
        if i == 0 or buf[i - 1] != 0x0D:
            raise BadRequest("bare LF: lines must end with CRLF")
        i = buf.find(b"\n", i + 1, stop)
    i = buf.find(b"\r", start, stop)
    while i >= 0:
        if i + 1 < stop and buf[i + 1] != 0x0A:
            raise BadRequest("bare CR in the message")
        i = buf.find(b"\r", i + 1, stop)


def _field_lines_fit(buf: bytes, start: int, stop: int, limit: int) -> bool:
    return max(map(len, buf[start:stop].split(b"\r\n"))) <= limit


def _check_field_line_lengths(buf: bytes, start: int, stop: int, limit: int) -> None:
    if not _field_lines_fit(buf, start, stop, limit):
        raise HeaderLineTooLong(f"a field line is over the limit of {limit} bytes")


def _diagnose_head(buf: bytes, start: int, stop: int, limits: Limits) -> None:
    """Find out why a complete head failed the fast checks, and raise the precise error."""
    if stop + 2 - start > limits.max_head_size:
        raise HeadTooLarge(f"request head is over the limit of {limits.max_head_size} bytes")
    line_end = buf.find(_CRLF, start, stop)
    line = buf[start:line_end]
    if len(line) > limits.max_request_line:
        raise RequestLineTooLong(
            f"request line is over the limit of {limits.max_request_line} bytes"
        )
    if line.startswith(b"PRI * HTTP/2.0"):
        raise UnsupportedVersion("HTTP/2 connection preface received on HTTP/1.1")
    m = REQUEST_LINE_ANY_VERSION.fullmatch(line)
    parts = line.split(b" ")
    if m is None and len(parts) == 3 and parts[2].startswith(b"HTTP/"):
        if FIELD_BLOCK.fullmatch(parts[0] + b":\r\n") is None:
            raise BadRequest("invalid character in the method")
        _check_line_endings(buf, start, stop)
        if not parts[1].isascii() or parts[1].translate(None, _VISIBLE_ASCII):
            raise BadRequest("invalid character in the request target")
    if m is None:
        _check_line_endings(buf, start, stop)
        version = line.rsplit(b" ", 1)[-1]
        if version.startswith(b"HTTP/") and b" " in line:
            raise BadRequest("malformed HTTP version in the request line")
        raise BadRequest("malformed request line")
    if m.group(3) != b"1" or m.group(4) not in (b"0", b"1"):
        raise UnsupportedVersion(
            f"HTTP/{m.group(3).decode()}.{m.group(4).decode()} is not supported"
        )
    _diagnose_fields(buf, line_end + 2, stop, limits, what="header")


def _diagnose_fields(buf: bytes, start: int, stop: int, limits: Limits, *, what: str) -> None:
    _check_line_endings(buf, start, stop)
    for count, line in enumerate(buf[start:stop].split(b"\r\n")[:-1], 1):
        if len(line) > limits.max_header_line:
            raise HeaderLineTooLong(f"a {what} line is over the limit of {limits.max_header_line}")
        if count > limits.max_header_count:
            raise TooManyHeaders(f"more than {limits.max_header_count} {what} fields")
        if line[:1] in (b" ", b"\t"):
            raise BadRequest(f"obsolete line folding in a {what} field")
        name, colon, _ = line.partition(b":")
        if not colon:
            raise BadRequest(f"{what} line without a colon")
        if name[-1:] in (b" ", b"\t"):
            raise BadRequest(f"whitespace between a {what} field name and the colon")
        if FIELD_LINE.fullmatch(line + b"\r\n") is None:
            if FIELD_BLOCK.fullmatch(name + b":\r\n") is None:
                raise BadRequest(f"invalid character in a {what} field name")
            raise BadRequest(f"invalid character in a {what} field value")
    raise BadRequest(f"malformed {what} section")
