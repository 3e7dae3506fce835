"""Reading a response head (RFC 9112 4): the status line, the fields, and the client's errors.

Pure functions over bytes, for :class:`~tether.http1.ClientConnection`: one
checks a head still arriving (so a wrong or oversized one is refused before it
is complete), one parses a whole head. What the response means for framing and
for the connection is decided in ``_client.py``.
"""

from __future__ import annotations

import re

from tether.errors import (
    HeaderLineTooLong,
    HeadTooLarge,
    IncompleteMessage,
    RemoteProtocolError,
    TooManyHeaders,
    UnsupportedVersion,
)
from tether.http1._abnf import REASON
from tether.http1._head import _parse_fields
from tether.limits import Limits

__all__ = ["InvalidResponse", "ResponseTimeout", "check_partial_head", "parse_response_head"]


class InvalidResponse(RemoteProtocolError):
    """The server sent something that is not a valid HTTP/1.1 response.

    ``status_hint`` is 502, what a gateway answers its own client with.
    """

    status_hint = 502


class ResponseTimeout(RemoteProtocolError):
    """The response head or body did not arrive in time (504 for a gateway)."""

    status_hint = 504


_OTHER_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]").fullmatch
_TCHARS = frozenset(
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def check_partial_head(
    buf: bytes | bytearray, pos: int, scan: int, limits: Limits, eof: bool
) -> int:
    """Refuse an incomplete head that is already wrong; return where the next scan starts.

    ``buf[pos:]`` is the head so far; bytes before ``pos + scan - 1`` were checked for bare
    CR and LF by an earlier call. Raises when the head is over a limit, is not HTTP/1.x, or
    the server closed the connection (``eof``) inside it.
    """
    size = len(buf) - pos
    if size > limits.max_head_size:
        raise HeadTooLarge(f"response head is over the limit of {limits.max_head_size} bytes")
    if buf.find(b"\r\n", pos) < 0 and size > limits.max_request_line + 1:
        raise InvalidResponse(f"status line is over the limit of {limits.max_request_line}")
    n = min(size, 5)
    if buf[pos : pos + n] != b"HTTP/"[:n]:
        raise InvalidResponse(f"not an HTTP response: {bytes(buf[pos : pos + 16])!r}")
    version = bytes(buf[pos : pos + 8])
    if size >= 8 and version not in (b"HTTP/1.1", b"HTTP/1.0"):
        if _OTHER_VERSION(version):
            raise UnsupportedVersion(f"{version.decode()} responses are not supported")
        raise InvalidResponse(f"malformed HTTP version: {version!r}")
    _check_line_endings(buf, pos + max(0, scan - 1), len(buf))
    if eof:
        if size == 0:
            raise IncompleteMessage("the server closed the connection before responding")
        raise IncompleteMessage("the server closed the connection inside a response head")
    return max(0, size - 3)


def parse_response_head(
    head: bytes, limits: Limits
) -> tuple[bytes, int, bytes, list[tuple[bytes, bytes]]]:
    """``(version, status, reason, headers)`` of a whole head (without its final CRLFCRLF)."""
    if len(head) + 4 > limits.max_head_size:
        raise HeadTooLarge(f"response head is over the limit of {limits.max_head_size} bytes")
    _check_line_endings(head, 0, len(head))
    line, _, block = head.partition(b"\r\n")
    if len(line) > limits.max_request_line:
        raise InvalidResponse(f"status line is over the limit of {limits.max_request_line}")
    # RFC 9112 4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
    version, sp1, rest = line.partition(b" ")
    code, _, reason = rest.partition(b" ")
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        if _OTHER_VERSION(version):
            raise UnsupportedVersion(f"{version.decode()} responses are not supported")
        raise InvalidResponse(f"malformed status line: {line[:64]!r}")
    # A missing SP before an empty reason is taken (as h11 and browsers do): the status line
    # carries no framing, so the leniency cannot desynchronise anything.
    if not sp1 or len(code) != 3 or not code.isdigit():
        raise InvalidResponse(f"malformed status line: {line[:64]!r}")
    if REASON.fullmatch(reason) is None:
        raise InvalidResponse("control character in the reason phrase")
    status = int(code)
    if not 100 <= status <= 599:
        raise InvalidResponse(f"status code {status} is outside 100-599")
    lines = block.split(b"\r\n") if block else []
    if len(lines) > limits.max_header_count:
        raise TooManyHeaders(f"more than {limits.max_header_count} response fields")
    if lines and max(map(len, lines)) > limits.max_header_line:
        raise HeaderLineTooLong(f"a response field line is over {limits.max_header_line} bytes")
    headers = _parse_fields(lines) if lines else []
    if headers is None:
        raise InvalidResponse(_diagnose_fields(lines))
    return version, status, reason, headers


def _check_line_endings(buf: bytes | bytearray, start: int, stop: int) -> None:
    """Refuse a bare LF, or a CR not followed by LF (RFC 9112 2.2: we do not take the MAY)."""
    i = buf.find(b"\n", start, stop)
    while i >= 0:
        if i == 0 or buf[i - 1] != 0x0D:
            raise InvalidResponse("bare LF in the response head: lines must end with CRLF")
        i = buf.find(b"\n", i + 1, stop)
    i = buf.find(b"\r", start, stop)
    while i >= 0:
        if i + 1 < len(buf) and buf[i + 1] != 0x0A:
            raise InvalidResponse("bare CR in the response head")
        i = buf.find(b"\r", i + 1, stop)


def _diagnose_fields(lines: list[bytes]) -> str:
    """Why a response's field lines failed the checks, for the error message."""
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            return "obsolete line folding in a response field (RFC 9112 5.2)"
        name, colon, _ = line.partition(b":")
        if not colon:
            return "response field line without a colon"
        if name[-1:] in (b" ", b"\t"):
            return "whitespace between a response field name and the colon (RFC 9112 5.1)"
        if not name or not _TCHARS.issuperset(name):
            return "invalid character in a response field name"
    return "invalid character in a response field value"
