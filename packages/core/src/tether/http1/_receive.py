"""Reading requests: the head on top of the body readers.

:class:`RequestReader` is a :class:`~tether.http1._body.BodyReader` that also
reads request heads. A complete head arriving in one piece (the common case)
is parsed with one ``fullmatch`` for the request line, and its field lines are
checked in C, column by column (``_head``). No table here is filled from what
a client sends, so nothing one client sends changes how another's bytes are
read (or how fast). A partial head is accumulated and searched only from where
the last search stopped, and every limit is checked on the partial input.
"""

from __future__ import annotations

from tether.errors import (
    BadRequest,
    ContentTooLarge,
    HeadTooLarge,
    IncompleteMessage,
    InvalidFraming,
    RequestLineTooLong,
    TooManyHeaders,
    UnsupportedTransferCoding,
    UnsupportedVersion,
)
from tether.http1._abnf import AUTHORITY_FORM
from tether.http1._body import BodyReader
from tether.http1._events import NEED_DATA, Request, Signal, new_request
from tether.http1._head import (
    _BLOCK_BYTES,
    _FRAMING_FIELDS,
    _JUST_CHUNKED,
    _MAX_LEADING_EMPTY_LINES,
    _METHOD_WINDOW,
    _PLAIN_HOST,
    _REQUEST_HEAD,
    _V10,
    _V11,
    _absolute_authority,
    _check_content_length,
    _check_host,
    _connection_options,
    _diagnose_head,
    _parse_block,
    _parse_few_fields,
    _transfer_codings,
)
from tether.http1._tables import (
    _CRLF,
    _HEAD_TERMINATOR,
    _HEAD_TERMINATOR_SCAN_BACK,
    _TCHAR_TABLE,
    P_CHUNK_LINE,
    P_FIXED,
    P_HEAD,
    Phase,
    _check_line_endings,
)
from tether.limits import Limits


class RequestReader(BodyReader):
    """Parses the request side of one server connection.

    The connection calls ``parse_head`` or ``read_head_general`` while
    ``phase`` is HEAD, then the body readers; no event past the current
    request's :class:`EndOfMessage` is read until the connection moves
    ``phase`` back to HEAD for the next cycle.
    """

    __slots__ = (
        "connect",
        "counted_to",
        "empty_lines",
        "expect_continue",
        "head_lines",
        "head_request",
        "http10",
        "keep_alive_requested",
        "upgrade",
    )

    def __init__(self, limits: Limits) -> None:
        # BodyReader's attributes, set here in one frame (a test checks that none is missed).
        self.limits = limits
        self.buf = b""
        self.pos = 0
        self.acc: bytearray | None = None
        self.scan = 0
        self.eof = False
        self.phase: Phase = P_HEAD
        self.remaining = 0
        self.received = 0
        # Empty lines skipped before the current request line (RFC 9112 2.2).
        self.empty_lines = 0
        self.http10 = False
        self.keep_alive_requested = True
        self.expect_continue = False
        self.upgrade = False
        # Whether the request read last is a CONNECT (a 2xx to it opens a tunnel).
        self.connect = False
        # Whether the head read last (even one refused, or still partial) is a HEAD request:
        # no response to it may carry a body.
        self.head_request = False
        # Lines of the partial head counted so far, and up to where (_check_partial_head).
        self.head_lines = 0
        self.counted_to = 0

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
        ``fullmatch``, and the field lines by ``_head._parse_fields``'s rules (a long block
        by ``_parse_block``, a short one line by line).
        This accepts exactly what the grammar in ``_abnf.REQUEST_HEAD`` accepts
        (a property test holds the two together); whatever it refuses goes to
        ``_diagnose_head`` for the precise error.
        """
        limits = self.limits
        m = (
            _REQUEST_HEAD(buf, pos, end)
            if end - pos <= limits._small_head or end + 4 - pos <= limits.max_head_size
            else None
        )
        if m is not None:
            method, target, minor, block = m.groups()
            self.head_request = method == b"HEAD"
            headers: list[tuple[bytes, bytes]] | None
            if end - pos <= limits._small_head:  # no line can be over a size limit
                headers = (
                    []
                    if block is None
                    else (_parse_block(block) if len(block) > _BLOCK_BYTES else None)
                    or _parse_few_fields(block.split(b"\r\n"))
                )
            elif len(method) + len(target) + 10 > limits.max_request_line:
                headers = None
            elif block is None:
                headers = []
            else:
                lines = block.split(b"\r\n")
                headers = (
                    (_parse_block(block) or _parse_few_fields(lines))
                    if max(map(len, lines)) <= limits.max_header_line
                    and len(lines) <= limits.max_header_count
                    else None
                )
            if (
                headers is not None
                and len(headers) <= limits.max_header_count
                and 0x23 not in target  # "#": _abnf.TARGET (an int needle, as in tether.serving)
            ):
                self.pos = end + 4
                return self._interpret(method, target, headers, minor == b"0")
        # The error response to a HEAD request, even a refused one, carries no body.
        self.head_request = buf.startswith(b"HEAD ", pos)
        _diagnose_head(buf, pos, end + 2, limits)
        raise BadRequest("malformed request head")  # pragma: no cover - diagnose raises

    def head_complete(self) -> bool:
        """Whether a whole request head (not yet parsed) is buffered.

        Searched from where the last search of accumulated input stopped, past
        any empty lines before the request line, so calling this after every
        receive costs no more than the parser's own search.
        """
        acc = self.acc
        if acc is not None:
            lead = 0
            while acc.startswith(_CRLF, lead):
                lead += 2
            return acc.find(_HEAD_TERMINATOR, max(lead, self.scan)) >= 0
        buf = self.buf
        pos = self.pos
        while buf.startswith(_CRLF, pos):
            pos += 2
        return buf.find(_HEAD_TERMINATOR, pos) >= 0

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
            if method != b"\r" and 0 in method.translate(_TCHAR_TABLE):
                raise BadRequest("invalid character in the method")
        _check_line_endings(acc, max(start, lead), stop)
        # Limits.max_header_count, while reading: every LF so far ends a line (a bare one was
        # refused just above), the first of them the request line. Each byte is counted once:
        # the count goes on from where the last call stopped (start 0 is a fresh head).
        lines = acc.count(b"\n", max(lead, self.counted_to if start else 0), stop)
        self.head_lines = lines = lines + self.head_lines if start else lines
        self.counted_to = stop
        if lines - 1 > limits.max_header_count:
            raise TooManyHeaders(f"more than {limits.max_header_count} header fields")

    # ---- interpretation of the head ------------------------------------------------------------

    def _interpret(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], http10: bool
    ) -> Request:
        """Apply RFC 9112's framing and routing rules to a parsed head; return the Request."""
        content_length: bytes | None = None
        transfer_encoding: list[bytes] | None = None
        host_count = 0
        content_types = 0
        connection_close = False
        connection_keep_alive = False
        connection_upgrade = False
        expect_continue = False
        upgrade_field = False
        # One pass, the fields that frame or route the request only. A plain loop with a set
        # test costs less than a dict of the fields and look-ups into it (about 3k machine
        # instructions less at 3 fields, 5k at 12: bench/http1_instructions.py), and it sees a
        # repeated field as it goes.
        for name, value in headers:
            if name not in _FRAMING_FIELDS:
                continue
            if name == b"host":
                host_count += 1
                if host_count > 1:
                    # RFC 9112 3.2: respond 400 to "any request message that contains more than
                    # one Host header field line".
                    raise BadRequest("more than one Host field")
                # A plain name (letters, digits, "." and "-") is a valid Host: no call for it.
                if not value or 0 in value.translate(_PLAIN_HOST):
                    _check_host(value)
            elif name == b"content-length":
                if content_length is not None:
                    # RFC 9110 8.6 lets a recipient accept repeated identical values; we take
                    # the stricter choice it also allows and reject the message.
                    raise InvalidFraming("more than one Content-Length field")
                if not value.isdigit() or len(value) > 18:
                    _check_content_length(value)
                content_length = value
            elif name == b"transfer-encoding":
                if transfer_encoding is None:
                    # "chunked" alone is the shared _JUST_CHUNKED, never extended in place.
                    transfer_encoding = (
                        _JUST_CHUNKED if value == b"chunked" else _transfer_codings(value)
                    )
                else:
                    transfer_encoding = [*transfer_encoding, *_transfer_codings(value)]
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
        # RFC 9110 7.8: "A server MUST ignore an Upgrade header field that is received in an
        # HTTP/1.0 request."
        self.upgrade = upgrade_field and connection_upgrade and not http10
        self.connect = method == b"CONNECT"
        return new_request(method, target, headers, _V10 if http10 else _V11)

    # ---- bodies --------------------------------------------------------------------------------
