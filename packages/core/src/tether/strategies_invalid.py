"""Hypothesis strategies for HTTP/1.1 requests that a strict server must refuse.

Needs ``hypothesis`` (not a dependency of the core). :func:`invalid_requests` draws an
:class:`InvalidRequest`: a small valid request (from the parts :mod:`tether.strategies`
draws) with one defect, the rule it breaks and the status to answer: bare LF or CR,
obs-fold, whitespace before the colon, control bytes, methods and field names that are no
tokens, bad versions and authorities, Host missing or repeated, Content-Length with
Transfer-Encoding, conflicting lengths, ``chunked`` obfuscated or not last, unknown
codings, bad chunk sizes, heads and bodies over the server's
:class:`~tether.limits.Limits`.

On the core (for any server: send ``bad.data``, expect ``bad.status``)::

    from hypothesis import given

    from tether.errors import ProtocolError
    from tether.http1 import NEED_DATA, PAUSED, ServerConnection
    from tether.strategies_invalid import invalid_requests

    @given(invalid_requests())
    def test_refused(bad):
        conn = ServerConnection()
        conn.receive_data(bad.data)
        try:
            while conn.next_event() not in (NEED_DATA, PAUSED):
                pass  # PAUSED: a whole request was taken
        except ProtocolError as exc:
            assert exc.status_hint == bad.status, bad.rule
        else:
            raise AssertionError(f"accepted: {bad}")
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from tether.limits import Limits
from tether.strategies import _RESERVED, _targets, field_values, tokens

__all__ = ["InvalidRequest", "invalid_requests"]


# ---- Invalid requests: what a strict server must refuse --------------------------------------


@dataclass(frozen=True)
class InvalidRequest:
    """Request bytes that a strict server must refuse, with the rule they break and the answer."""

    #: What a client sends: a whole request, which a server may refuse before its end.
    data: bytes
    #: The rule broken, as ``"RFC 9112 5.1"``.
    rule: str
    #: The status to answer with: 400, 413, 414, 431, 501 or 505.
    status: int
    #: What is wrong, in a few words.
    defect: str


_CRLF = b"\r\n"
# Bytes that are not tchar (RFC 9110 5.6.2): delimiters, controls, obs-text. Space, CR, LF
# and ":" are left out: they change where a line or a field name ends.
_NOT_TCHAR = [*b'"(),/;<=>?@[\\]{}', *range(0x09), 0x7F, 0x80, 0xC3, 0xFF]
# Controls that may not appear in a field value (HTAB may; CR and LF have cases of their own).
_VALUE_CTL = [*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F]
# Transfer codings with chunked not final, or applied twice (RFC 9112 6.3, 7).
_NOT_FINAL = [b"chunked, identity", b"xchunked", b"chunked, gzip", b"identity", b"chunkedx",
              b"chunked, chunked"]  # fmt: skip
# Whitespace after the size twice: the way most parsers go wrong (BWS is only for before ";").
_BAD_CHUNK_SIZES = [b"-1", b"+1", b"0x1", b"1g", b"", b" 1", b"1 ", b"1\t", b"1 "]
_BAD_LENGTHS = [b"-1", b"+3", b"0x3", b"3.0", b"", b"3 3", b"1e2"]
_MALFORMED_VERSIONS = [b"http/1.1", b"HTTP/1", b"HTTP/1.1.1", b"HTTP/10.0", b"HTTP/1.x",
                       b"HTTPS/1.1", b"HTTP/01.1", b"HTTP /1.1", b"HTTP/1.1 "]  # fmt: skip
_BAD_AUTHORITIES = [b"user@example.com", b"example.com:http", b"", b":80", b'exa"mple.com',
                    b"[::1", b"exa%zzmple.com"]  # fmt: skip


def _assemble(lines: list[bytes], ends: dict[int, bytes] | None = None, body: bytes = b"") -> bytes:
    # Each line with its ending (CRLF unless ``ends`` says otherwise), the empty line
    # (index len(lines)), then the body.
    ends = ends or {}
    out = [line + ends.get(i, _CRLF) for i, line in enumerate(lines)]
    return b"".join(out) + ends.get(len(lines), _CRLF) + body


def _chunked(body: bytes) -> bytes:
    return (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"


@st.composite
def _base(draw: st.DrawFn, method: bytes | None = None) -> tuple[bytes, list[bytes]]:
    # A small valid HTTP/1.1 head without framing fields: (request line, field lines with Host).
    if method is None:
        method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"OPTIONS"]))
    target = draw(_targets())
    names = tokens(10).filter(lambda n: n.lower().decode() not in _RESERVED)
    fields = draw(st.lists(st.tuples(names, field_values(20)), max_size=4))
    fields.insert(draw(st.integers(0, len(fields))), (b"Host", b"example.com"))
    return b"%s %s HTTP/1.1" % (method, target), [b"%s: %s" % field for field in fields]


def _insert(draw: st.DrawFn, lines: list[bytes], line: bytes) -> list[bytes]:
    # ``line`` among the field lines, anywhere after the request line.
    at = draw(st.integers(1, len(lines)))
    return [*lines[:at], line, *lines[at:]]


def _spoil(draw: st.DrawFn, value: bytes, byte: int) -> bytes:
    at = draw(st.integers(0, len(value)))
    return value[:at] + bytes((byte,)) + value[at:]


@st.composite
def _syntax(draw: st.DrawFn) -> InvalidRequest:
    # Broken lines: endings, folding, whitespace, bytes that no rule allows.
    start, fields = draw(_base())
    lines = [start, *fields]
    kind = draw(st.sampled_from(range(8)))  # uniform: integers() favours the ends
    if kind == 0:
        ends = {draw(st.integers(0, len(lines))): b"\n"}
        return InvalidRequest(_assemble(lines, ends), "RFC 9112 2.2", 400, "bare LF line ending")
    if kind == 1:
        i = draw(st.integers(0, len(lines) - 1))
        if draw(st.booleans()):
            return InvalidRequest(_assemble(lines, {i: b"\r"}), "RFC 9112 2.2", 400, "bare CR")
        lines[i] = _spoil(draw, lines[i], 0x0D)
        return InvalidRequest(_assemble(lines), "RFC 9112 2.2", 400, "bare CR inside a line")
    if kind == 2:
        fold = draw(st.sampled_from([b" ", b"\t", b"  "])) + draw(field_values(10)) + b"x"
        at = draw(st.integers(1, len(lines)))
        data = _assemble([*lines[:at], fold, *lines[at:]])
        if at == 1:  # RFC 9112 2.2: whitespace between the start-line and the first field
            return InvalidRequest(data, "RFC 9112 2.2", 400, "whitespace-led line after start")
        return InvalidRequest(data, "RFC 9112 5.2", 400, "obs-fold")
    if kind == 3:
        i = draw(st.integers(1, len(lines) - 1))
        name, _, value = lines[i].partition(b":")
        lines[i] = name + draw(st.sampled_from([b" ", b"\t", b"  "])) + b":" + value
        return InvalidRequest(_assemble(lines), "RFC 9112 5.1", 400, "whitespace before colon")
    if kind == 4:
        i = draw(st.integers(1, len(lines) - 1))
        name, _, value = lines[i].partition(b":")
        byte = draw(st.sampled_from(_VALUE_CTL))
        lines[i] = name + b":" + _spoil(draw, value, byte)
        return InvalidRequest(_assemble(lines), "RFC 9110 5.5", 400, "control byte in a value")
    if kind == 5:
        i = draw(st.integers(1, len(lines) - 1))
        name, _, value = lines[i].partition(b":")
        name = b"" if draw(st.booleans()) else _spoil(draw, name, draw(st.sampled_from(_NOT_TCHAR)))
        lines[i] = name + b":" + value
        return InvalidRequest(_assemble(lines), "RFC 9110 5.1", 400, "field name not a token")
    if kind == 6:
        method, _, rest = start.partition(b" ")
        lines[0] = _spoil(draw, method, draw(st.sampled_from(_NOT_TCHAR))) + b" " + rest
        return InvalidRequest(_assemble(lines), "RFC 9110 9.1", 400, "method not a token")
    target = start.split(b" ")[1]
    path = target.partition(b"example.com")[2] if target.startswith(b"http:") else target
    authority = draw(st.sampled_from(_BAD_AUTHORITIES))
    lines[0] = start.replace(target, b"http://" + authority + path, 1)
    return InvalidRequest(_assemble(lines), "RFC 9112 3.2.2", 400, "bad authority in target")


@st.composite
def _semantics(draw: st.DrawFn) -> InvalidRequest:
    # Well-formed lines with a meaning a server must refuse: version, Host, framing.
    start, fields = draw(_base(method=b"POST"))
    body = draw(st.binary(min_size=1, max_size=20))
    kind = draw(st.sampled_from(range(9)))
    if kind == 0:
        major = draw(st.sampled_from([b"0", b"2", b"3", b"9"]))
        version = b"HTTP/%s.%d" % (major, draw(st.integers(0, 9)))
        lines = [start.replace(b"HTTP/1.1", version), *fields]
        return InvalidRequest(_assemble(lines), "RFC 9110 15.6.6", 505, "HTTP major version not 1")
    if kind == 1:
        version = draw(st.sampled_from(_MALFORMED_VERSIONS))
        lines = [start.replace(b"HTTP/1.1", version), *fields]
        return InvalidRequest(_assemble(lines), "RFC 9112 2.3", 400, "malformed HTTP-version")
    if kind == 2:
        if draw(st.booleans()):
            lines = [start, *(f for f in fields if not f.startswith(b"Host:"))]
            return InvalidRequest(_assemble(lines), "RFC 9112 3.2", 400, "no Host in HTTP/1.1")
        host = draw(st.sampled_from([b"example.com", b"example.org", b"a b", b"u@example.com"]))
        lines = _insert(draw, [start, *fields], b"Host: " + host)
        return InvalidRequest(_assemble(lines), "RFC 9112 3.2", 400, "Host repeated or invalid")
    length = b"Content-Length: %d" % len(body)
    te = b"Transfer-Encoding: chunked"
    if kind == 3:
        lines = _insert(draw, _insert(draw, [start, *fields], length), te)
        data = _assemble(lines, body=_chunked(body))
        return InvalidRequest(data, "RFC 9112 6.3", 400, "Content-Length and Transfer-Encoding")
    if kind == 4:
        if draw(st.booleans()):
            other = b"Content-Length: %d" % (len(body) + draw(st.integers(1, 9)))
            lines = _insert(draw, _insert(draw, [start, *fields], length), other)
        else:
            value = draw(st.sampled_from([*_BAD_LENGTHS, b"%d, %d" % (len(body), len(body) + 1)]))
            lines = _insert(draw, [start, *fields], b"Content-Length: " + value)
        data = _assemble(lines, body=body)
        return InvalidRequest(data, "RFC 9112 6.3", 400, "invalid or conflicting Content-Length")
    if kind == 5:
        coding = draw(st.sampled_from(_NOT_FINAL))
        lines = _insert(draw, [start, *fields], b"Transfer-Encoding: " + coding)
        data = _assemble(lines, body=_chunked(body))
        return InvalidRequest(data, "RFC 9112 6.3", 400, "chunked not the final coding once")
    if kind == 6:
        coding = draw(tokens(8).filter(lambda t: t.lower() not in (b"chunked", b"identity")))
        lines = _insert(draw, [start, *fields], b"Transfer-Encoding: %s, chunked" % coding)
        data = _assemble(lines, body=_chunked(body))
        return InvalidRequest(data, "RFC 9112 6.1", 501, "unknown transfer coding")
    if kind == 7:
        lines = _insert(draw, [start.replace(b"HTTP/1.1", b"HTTP/1.0"), *fields], te)
        data = _assemble(lines, body=_chunked(body))
        return InvalidRequest(data, "RFC 9112 6.1", 400, "Transfer-Encoding in HTTP/1.0")
    size = draw(st.sampled_from(_BAD_CHUNK_SIZES))
    if draw(st.booleans()):  # a hex overflow: a 64-bit (or larger) chunk size
        size = b"1" + b"0" * draw(st.integers(16, 24))
    before = b"%x\r\n%s\r\n" % (len(body), body) if draw(st.booleans()) else b""
    data = _assemble(
        _insert(draw, [start, *fields], te), body=before + size + b"\r\nx\r\n0\r\n\r\n"
    )
    return InvalidRequest(data, "RFC 9112 7.1", 400, "chunk-size not 1*HEXDIG")


@st.composite
def _oversized(draw: st.DrawFn, limits: Limits) -> InvalidRequest:
    # One limit broken by a little or a lot; the other limits are kept.
    start, fields = draw(_base(method=b"POST"))
    lines = [start, *fields]
    over = draw(st.integers(1, 64))
    kinds = ["line", "field", "count", "head", "body"]
    if limits.max_body_size is None:
        kinds.remove("body")
    kind = draw(st.sampled_from(kinds))
    if kind == "line":
        pad = limits.max_request_line - len(start) + over
        lines[0] = start.replace(b" HTTP/1.1", b"?" + b"q" * pad + b" HTTP/1.1")
        return InvalidRequest(_assemble(lines), "RFC 9112 3", 414, "request line too long")
    if kind == "field":
        line = b"X-Big: " + b"v" * (limits.max_header_line - 7 + over)
        return InvalidRequest(
            _assemble(_insert(draw, lines, line)), "RFC 6585 5", 431, "field line too long"
        )
    if kind == "count":
        extra = [b"X-%d: v" % i for i in range(limits.max_header_count - len(fields) + 1)]
        return InvalidRequest(_assemble(lines + extra), "RFC 6585 5", 431, "too many fields")
    if kind == "head":
        size = min(limits.max_header_line, limits.max_head_size // 2) - 8
        count = limits.max_head_size // size + 1
        extra = [b"X-%d: %s" % (i, b"v" * (size - 8)) for i in range(count)]
        return InvalidRequest(_assemble(lines + extra), "RFC 6585 5", 431, "head too large")
    assert limits.max_body_size is not None
    body = b"b" * (limits.max_body_size + over)
    if draw(st.booleans()):
        lines = _insert(draw, lines, b"Content-Length: %d" % len(body))
        return InvalidRequest(
            _assemble(lines, body=body), "RFC 9110 15.5.14", 413, "body too large"
        )
    lines = _insert(draw, lines, b"Transfer-Encoding: chunked")
    data = _assemble(lines, body=_chunked(body))
    return InvalidRequest(data, "RFC 9110 15.5.14", 413, "chunked body too large")


def invalid_requests(limits: Limits | None = None) -> st.SearchStrategy[InvalidRequest]:
    """One request a strict server must refuse, labelled with the rule it breaks and the status.

    Each is a small valid request with one defect: bare LF or CR, obs-fold, whitespace
    before the colon, control bytes, methods and field names that are no tokens, a bad
    HTTP version, a bad authority, Host missing or repeated, Content-Length with
    Transfer-Encoding, conflicting Content-Lengths, obfuscated or unknown transfer codings,
    bad chunk sizes (also 64-bit overflows), and heads or bodies just or far over
    ``limits`` (the server's; ``Limits()`` by default), which must leave room for the
    small requests: lines of 256 bytes, 16 fields, heads of 2 KiB.
    """
    limits = limits if limits is not None else Limits()
    if (
        min(limits.max_request_line, limits.max_header_line) < 256
        or limits.max_header_count < 16
        or limits.max_head_size < 2048
    ):
        raise ValueError("invalid_requests() needs limits of at least 256-byte lines, 16 fields")
    return st.one_of(_syntax(), _semantics(), _oversized(limits))
