"""Parsing a request head: the request line, field lines, and the field rules.

Module-level functions the request reader (``_receive``) calls: the request
line is checked whole by one ``fullmatch``, field lines column by column in
C, and the fields that carry framing and routing (Host, Content-Length,
Transfer-Encoding, Connection) are checked by small pure helpers. Whatever
the fast checks refuse goes to ``_diagnose_head`` for the precise error.
"""

from __future__ import annotations

import re

from tether.errors import (
    BadRequest,
    HeadTooLarge,
    InvalidFraming,
    RequestLineTooLong,
    UnsupportedVersion,
)
from tether.http1._abnf import (
    ABSOLUTE_FORM,
    FIELD_BLOCK,
    HOST,
    REQUEST_LINE_ANY_VERSION,
    TOKEN,
)
from tether.http1._tables import (
    _CRLF,
    _FRAMING_NAMES,
    _LINE_TABLE,
    _NAME_CHECK_TABLE,
    _NAME_SEPARATORS,
    _TCHAR_TABLE,
    _VISIBLE_ASCII,
    _check_line_endings,
    _diagnose_fields,
    _refuse_framing_lookalikes,
    _table,
)
from tether.limits import Limits

# The request line, checked whole by one fullmatch over the head, which also hands back the
# field lines after it as one group: the target is visible US-ASCII (RFC 9112 3.2; the
# reader then refuses a "#", _abnf.TARGET: one memchr costs less than a narrower class), and only
# HTTP/1.0 and HTTP/1.1 pass (anything else goes to _diagnose_head for a 400 or a 505).
_REQUEST_HEAD = re.compile(
    rb"(" + TOKEN + rb") ([\x21-\x7e]+) HTTP/1\.([01])(?:\r\n(.*))?", re.DOTALL
).fullmatch


def _parse_fields(lines: list[bytes]) -> list[tuple[bytes, bytes]] | None:
    """``(lowercase name, value)`` of every field line (CRLF excluded), or None if one is invalid.

    RFC 9112 5.1: field-line = field-name ":" OWS field-value OWS. The name is
    tchar up to the first colon, so whitespace before the colon and obs-fold
    (a line starting with SP or HTAB) fail; every byte of a line is HTAB, SP,
    VCHAR or obs-text, so a bare CR or LF or any other control byte fails.
    Nothing is remembered from one head to the next. (The request reader also
    takes a whole block of lines to ``_parse_block``, which applies the same rules
    faster to the common spelling; a property test holds the two together.)
    """
    if len(lines) > _FEW_LINES:
        fields = _parse_block(b"\r\n".join(lines))
        if fields is not None:
            return fields
    return _parse_few_fields(lines)


def _parse_block(block: bytes) -> list[tuple[bytes, bytes]] | None:
    """``_parse_fields`` of a block of field lines joined by CRLF, in a dozen C calls, if every
    line is spelled ``name: value`` (one ": " in each line); None otherwise (the caller then
    reads the lines one by one, which decides). Never None for a block ``_parse_few_fields``
    refuses but accepted here: every line's bytes are checked as there.

    The CRLFs become ": \n" and the block is split on ": ", so that names and values
    alternate, each name after the first starting with the LF. That alternation is proved,
    not assumed: the block grew by one byte per CRLF, so there are ``count`` lines; ``2 *
    count`` pieces means as many separators; no value holds an LF (the value check refuses
    it) and the names hold exactly ``count - 1`` of them, each at the start of a piece (as every
    LF from a CRLF is); so each line gave one name and one value. A bare LF would be one LF
    too many in the names, a line with no ": " or two a piece out of step.
    """
    marked = block.replace(b"\r\n", b": \n")
    count = len(marked) - len(block) + 1
    pieces = marked.split(b": ")
    if len(pieces) != count + count:
        return None
    joined = b"".join(pieces[0::2])  # the names, LF between them
    values = pieces[1::2]
    # One pass over the names: every byte must be tchar (others become NUL), and the result,
    # lowercase without "-", "_" and ".", shows any name that looks like a framing field.
    folded = joined.translate(_NAME_CHECK_TABLE, _NAME_SEPARATORS)
    if 0 in folded or 0 in b"".join(values).translate(_LINE_TABLE):
        return None
    lowered = joined.lower().split(b"\n")
    if len(lowered) != count or not all(lowered):
        return None
    if folded.find(b"contentlength") >= 0 or folded.find(b"transferencoding") >= 0:
        # Some name may fold to a framing name: fine if as many names are that name exactly.
        folded_names = folded.split(b"\n")
        if folded_names.count(b"contentlength") != lowered.count(
            b"content-length"
        ) or folded_names.count(b"transferencoding") != lowered.count(b"transfer-encoding"):
            _refuse_framing_lookalikes(lowered)
    # The values hold no control byte but HTAB, so strip() strips exactly the OWS (SP, HTAB).
    return list(zip(lowered, map(_strip, values)))


def _parse_few_fields(lines: list[bytes]) -> list[tuple[bytes, bytes]] | None:
    """``_parse_fields`` line by line: any lines, and the cheapest way for a few."""
    fields = []
    for line in lines:
        name, colon, value = line.partition(b":")
        # The name through a table that lowercases tchar and maps any other byte to NUL.
        name = name.translate(_LOWER_TCHAR)
        if not colon or not name or 0 in name or 0 in value.translate(_LINE_TABLE):
            return None
        # Shorter names cannot fold to a framing field name (13 and 16 letters); a longer one
        # that folds to one and is not it is refused there (the call costs three times the
        # test, and browsers send several long names: Accept-Language, Sec-Fetch-Mode...).
        if (
            len(name) >= 13
            and _FRAMING_NAMES.get(name.translate(None, _NAME_SEPARATORS), name) != name
        ):
            _refuse_framing_lookalikes((name,))
        fields.append((name, value.strip()))
    return fields


# A block of field lines longer than this is read by _parse_block; a shorter one line by line
# (_parse_few_fields). The block's dozen C calls cost about 13k machine instructions however
# few its lines, line by line about 4.5k a line (CPython 3.11, callgrind): even at about six
# lines, some 250 bytes of a realistic head; at twelve lines the block costs a fifth less.
_BLOCK_BYTES = 250
# _parse_fields (responses, trailers): more lines than this are tried as a block.
_FEW_LINES = 6
_strip = bytes.strip
# tchar lowercased; any other byte maps to NUL.
_LOWER_TCHAR = _TCHAR_TABLE.lower()


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
# The fields _interpret reads: they frame or route the request.
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
# RFC 9112 2.2: a server "SHOULD ignore at least one empty line (CRLF) received prior to the
# request-line". We ignore a few, and no more, so that a stream of CRLFs is not free to send.
_MAX_LEADING_EMPTY_LINES = 4
# How far into a partial request line _check_partial_head looks for a bad method byte.
_METHOD_WINDOW = 32


def _check_host(value: bytes) -> None:
    """Refuse an invalid Host value (RFC 9112 3.2, RFC 3986 3.2.2)."""
    # The common host: letters, digits, "." and "-", then maybe ":" and digits. Such a value
    # matches HOST, so only the others need the regular expression.
    host, _, port = value.partition(b":")
    if host and 0 not in host.translate(_PLAIN_HOST) and (not port or port.isdigit()):
        return
    if HOST.fullmatch(value) is None:
        raise BadRequest("invalid Host field value")


# Letters, digits, "." and "-" map to themselves, every other byte to NUL.
_PLAIN_HOST = _table(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")


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
    if 0x23 in m.group(2):
        raise BadRequest("'#' in the request target: a fragment is never sent (RFC 9110 4.2.5)")
    _diagnose_fields(buf, line_end + 2, stop, limits, what="header")
