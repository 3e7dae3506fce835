"""Hypothesis strategies for HTTP/1.1 messages, valid and invalid, for testing any parser or server.

Needs ``hypothesis`` (it is not a dependency of the core). Four strategies (WebSocket
frame streams are in :mod:`tether.strategies_ws`):

- :func:`requests`: one valid request (:class:`GeneratedRequest`): methods (also
  unknown tokens), origin- and absolute-form targets, field values with obs-text and
  random optional whitespace on the wire, a body framed by Content-Length or chunked
  (random chunk sizes, some chunk extensions, some trailers), HTTP/1.1 with Host or
  HTTP/1.0;
- :func:`request_streams`: a list of persistent HTTP/1.1 requests to pipeline on
  one connection;
- :func:`responses`: one valid response (:class:`GeneratedResponse`, with 1xx
  before it sometimes) as events for a server connection to send, for testing a
  client.
- :func:`invalid_requests`: one request a strict server must refuse
  (:class:`InvalidRequest`: ``data``, the ``rule`` broken, the ``status`` to answer):
  bare LF or CR, obs-fold, whitespace before the colon, control bytes, bad tokens,
  versions and authorities, Host missing or repeated, Content-Length with
  Transfer-Encoding, conflicting lengths, obfuscated codings, bad chunk sizes, heads and
  bodies over the server's :class:`~tether.limits.Limits`.

Every generated request is valid under RFC 9110 and RFC 9112, so a conforming
parser must accept it and report exactly its fields and body, and a conforming
server must answer it once (pipelined ones in order). A parser under test::

    from hypothesis import given
    from tether.strategies import requests

    @given(requests())
    def test_my_parser(request):
        parsed = my_parse(request.to_bytes())          # the bytes a client sends
        assert parsed.method == request.method
        assert parsed.target == request.target
        # Lowercase names, values without OWS; Host aside, which a server may take from an
        # absolute-form target (RFC 9112 3.2.2).
        fields = [f for f in request.expected_headers() if f[0] != b"host"]
        assert [f for f in parsed.headers if f[0] != b"host"] == fields
        assert parsed.body == request.body
        assert parsed.trailers == request.expected_trailers()

A running server: ``examples/test_my_server.py`` sends generated requests (alone,
then pipelined) to ``TETHER_TEST_URL`` and reads the answers with
:class:`tether.http1.ClientConnection`; copy it next to your tests and run pytest.
``tether conform URL`` does the same with a fixed seed (its ``traffic`` group,
``--requests N --seed S``). Generated requests say ``Host: example.com``; replace it
(``dataclasses.replace``) when the server checks the host.

Refusals, on the core (any server: send ``bad.data`` and expect ``bad.status``)::

    from tether.errors import ProtocolError
    from tether.http1 import NEED_DATA, PAUSED, ServerConnection
    from tether.strategies import invalid_requests

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

An ASGI application, in-process: ``examples/test_my_asgi_app.py`` runs generated requests
through the core to your app and back (``TETHER_TEST_APP=module:app pytest ...``).
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from tether.http1 import Data, EndOfMessage, InformationalResponse, Response
from tether.limits import Limits

__all__ = [
    "GeneratedRequest",
    "GeneratedResponse",
    "InvalidRequest",
    "field_values",
    "invalid_requests",
    "request_streams",
    "requests",
    "responses",
    "tokens",
]

_TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PCHAR = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@"
_VALUE_BYTES = [*range(0x21, 0x7F), *range(0x80, 0x100), 0x20, 0x09, 0x20]
# Fields whose meaning the generator controls itself.
_RESERVED = frozenset(
    (
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "expect",
        "upgrade",
        "te",
        "content-type",
    )
)
# Fields that RFC 9110 6.5.1 makes unsuitable as trailers (framing, routing, request
# modifiers, authentication, content format): strict servers refuse them there.
_NOT_TRAILERS = _RESERVED | {
    "trailer",
    "keep-alive",
    "content-encoding",
    "content-range",
    "range",
    "authorization",
    "proxy-authorization",
    "cookie",
}


@dataclass(frozen=True)
class GeneratedRequest:
    """A valid request: its parts, and how it goes on the wire."""

    method: bytes
    target: bytes
    version: bytes
    #: Fields as sent (original case), without the framing fields.
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    #: Chunk sizes when the body is chunked, else ``None`` (Content-Length).
    chunks: tuple[int, ...] | None
    trailers: tuple[tuple[bytes, bytes], ...]
    #: Optional whitespace put before and after each value on the wire.
    padding: tuple[tuple[bytes, bytes], ...]
    #: A chunk extension per chunk (b"" for none), when chunked.
    extensions: tuple[bytes, ...]

    def framing_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """The Content-Length or Transfer-Encoding field this request carries, if any."""
        if self.chunks is not None:
            return ((b"Transfer-Encoding", b"chunked"),)
        if self.body or self.method in (b"POST", b"PUT"):
            return ((b"Content-Length", str(len(self.body)).encode()),)
        return ()

    def wire_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """Every field in the order sent (values without padding)."""
        return self.headers + self.framing_headers()

    def expected_headers(self) -> list[tuple[bytes, bytes]]:
        """What a parser should report: lowercase names, values without OWS."""
        return [(name.lower(), value) for name, value in self.wire_headers()]

    def expected_trailers(self) -> list[tuple[bytes, bytes]]:
        """The trailer fields a parser should report."""
        return [(name.lower(), value) for name, value in self.trailers]

    def to_bytes(self) -> bytes:
        """The request as a client sends it."""
        out = [b"%s %s HTTP/%s\r\n" % (self.method, self.target, self.version)]
        pads = list(self.padding) + [(b"", b"")] * len(self.wire_headers())
        for (name, value), (before, after) in zip(self.wire_headers(), pads):
            out.append(b"%s:%s%s%s\r\n" % (name, before, value, after))
        out.append(b"\r\n")
        if self.chunks is None:
            out.append(self.body)
        else:
            pos = 0
            for size, ext in zip(self.chunks, self.extensions):
                out.append(b"%x%s\r\n%s\r\n" % (size, ext, self.body[pos : pos + size]))
                pos += size
            out.append(b"0\r\n")
            out.extend(b"%s: %s\r\n" % field for field in self.trailers)
            out.append(b"\r\n")
        return b"".join(out)


def tokens(max_size: int = 12) -> st.SearchStrategy[bytes]:
    """RFC 9110 tokens."""
    return st.text(_TCHAR, min_size=1, max_size=max_size).map(str.encode)


def field_values(max_size: int = 40) -> st.SearchStrategy[bytes]:
    """Field values: visible bytes, obs-text, and inner SP/HTAB, no surrounding whitespace."""
    return st.lists(st.sampled_from(_VALUE_BYTES), max_size=max_size).map(
        lambda values: bytes(values).strip(b" \t")
    )


def _targets() -> st.SearchStrategy[bytes]:
    segment = st.text(_PCHAR, max_size=10).map(str.encode)
    path = st.lists(segment, min_size=1, max_size=4).map(lambda s: b"/" + b"/".join(s))
    query = st.text(_PCHAR + "/?", max_size=20).map(str.encode)
    origin = st.builds(
        lambda p, q, has_q: p + (b"?" + q if has_q else b""), path, query, st.booleans()
    )
    absolute = st.builds(lambda p: b"http://example.com" + p, path)
    return st.one_of(origin, origin, origin, absolute)


def _fields(
    max_count: int, reserved: frozenset[str] = _RESERVED
) -> st.SearchStrategy[tuple[tuple[bytes, bytes], ...]]:
    name = tokens().filter(lambda n: n.lower().decode() not in reserved)
    return st.lists(st.tuples(name, field_values()), max_size=max_count).map(tuple)


_OWS = st.sampled_from([b"", b" ", b"\t", b"  ", b" \t"])
_EXTENSIONS = st.sampled_from([b"", b"", b"", b";a", b";name=value", b';q="x y"', b" ; n = v"])


@st.composite
def requests(
    draw: st.DrawFn,
    *,
    max_headers: int = 8,
    max_body: int = 600,
    versions: tuple[bytes, ...] = (b"1.1", b"1.1", b"1.0"),
) -> GeneratedRequest:
    """One valid request (HTTP/1.1 with Host, or HTTP/1.0)."""
    version = draw(st.sampled_from(versions))
    method = draw(
        st.one_of(
            st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"HEAD"]),
            tokens().filter(lambda m: m != b"CONNECT"),
        )
    )
    target = draw(_targets())
    fields = draw(_fields(max_headers))
    host: tuple[tuple[bytes, bytes], ...] = ((b"Host", b"example.com"),)
    if version == b"1.1" or draw(st.booleans()):
        insert = draw(st.integers(0, len(fields)))
        fields = fields[:insert] + host + fields[insert:]
    body = draw(st.binary(max_size=max_body))
    chunked = version == b"1.1" and draw(st.booleans())
    chunks: tuple[int, ...] | None = None
    extensions: tuple[bytes, ...] = ()
    trailers: tuple[tuple[bytes, bytes], ...] = ()
    if chunked:
        sizes = []
        left = len(body)
        while left:
            size = draw(st.integers(1, left))
            sizes.append(size)
            left -= size
        chunks = tuple(sizes)
        extensions = tuple(draw(_EXTENSIONS) for _ in sizes)
        trailers = draw(_fields(3, _NOT_TRAILERS))
    count = len(fields) + 1
    padding = tuple(draw(st.tuples(_OWS, _OWS)) for _ in range(count))
    return GeneratedRequest(
        method, target, version, fields, body, chunks, trailers, padding, extensions
    )


def request_streams(max_requests: int = 4) -> st.SearchStrategy[list[GeneratedRequest]]:
    """Pipelined HTTP/1.1 requests, all persistent, for one connection."""
    return st.lists(requests(versions=(b"1.1",)), min_size=1, max_size=max_requests)


# Fields a response generator leaves to the core (framing, connection management).
_RESPONSE_RESERVED = frozenset(("content-length", "transfer-encoding", "connection", "trailer"))
_REASON_BYTES = [*range(0x21, 0x7F), *range(0x80, 0x100), 0x20, 0x09]


@dataclass(frozen=True)
class GeneratedResponse:
    """A valid response as events for a server connection to send, and what a client must read."""

    status: int
    reason: bytes
    #: Fields as given to the server (original case), without framing fields.
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    #: Whether a Content-Length is given (else the core chunks, or closes for HTTP/1.0).
    with_length: bool
    #: How the body is split into Data events.
    pieces: tuple[int, ...]
    #: Trailer fields (sent only when the core chunks the body).
    trailers: tuple[tuple[bytes, bytes], ...]
    #: 1xx statuses sent before it (100 or 103).
    informational: tuple[int, ...]

    def events(self) -> list[InformationalResponse | Response | Data | EndOfMessage]:
        """What to give ``ServerConnection.send``, in order."""
        out: list[InformationalResponse | Response | Data | EndOfMessage] = [
            InformationalResponse(code) for code in self.informational
        ]
        headers = list(self.headers)
        if self.with_length and self.status != 204:
            headers.append((b"Content-Length", b"%d" % len(self.body)))
        out.append(Response(self.status, headers, self.reason))
        pos = 0
        for size in self.pieces:
            out.append(Data(self.body[pos : pos + size]))
            pos += size
        out.append(EndOfMessage(self.trailers))
        return out


@st.composite
def responses(draw: st.DrawFn, *, max_headers: int = 6, max_body: int = 400) -> GeneratedResponse:
    """One valid final response (with maybe 1xx responses before it), as events to send."""
    status = draw(
        st.one_of(
            st.sampled_from([200, 200, 201, 204, 206, 301, 304, 404, 500]), st.integers(200, 599)
        )
    )
    reason = draw(
        st.lists(st.sampled_from(_REASON_BYTES), max_size=20).map(lambda b: bytes(b).strip(b" \t"))
    )
    headers = draw(_fields(max_headers, _RESPONSE_RESERVED))
    no_body = status in (204, 304)
    body = b"" if no_body else draw(st.binary(max_size=max_body))
    with_length = not no_body and draw(st.booleans())
    pieces: list[int] = []
    left = len(body)
    while left:
        size = draw(st.integers(1, left))
        pieces.append(size)
        left -= size
    trailers: tuple[tuple[bytes, bytes], ...] = ()
    if not with_length and not no_body:
        trailers = draw(_fields(2, _NOT_TRAILERS | {"set-cookie"}))
    informational = tuple(draw(st.lists(st.sampled_from([100, 103]), max_size=2)))
    return GeneratedResponse(
        status, reason, headers, body, with_length, tuple(pieces), trailers, informational
    )


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
_BAD_CHUNK_SIZES = [b"-1", b"+1", b"0x1", b"1g", b"", b" 1", b"1 "]
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
    kind = draw(st.integers(0, 7))
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
    kind = draw(st.integers(0, 8))
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
