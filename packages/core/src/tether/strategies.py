"""Hypothesis strategies for valid HTTP/1.1 messages, for testing any HTTP/1.1 parser or server.

Needs ``hypothesis`` (it is not a dependency of the core). Three strategies (requests a
strict server must refuse: :mod:`tether.strategies_invalid`; WebSocket frame streams:
:mod:`tether.strategies_ws`):

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
        # Lowercase names, values without OWS, and for an absolute-form target its
        # authority as the host (RFC 9112 3.2.2), as tether's ServerConnection reports them.
        assert parsed.headers == request.expected_headers()
        assert parsed.body == request.body
        assert parsed.trailers == request.expected_trailers()

A running server: ``examples/test_my_server.py`` sends generated requests (alone,
then pipelined) to ``TETHER_TEST_URL`` and reads the answers with
:class:`tether.http1.ClientConnection`; copy it next to your tests and run pytest.
``tether conform URL`` does the same with a fixed seed (its ``traffic`` group,
``--requests N --seed S``). Generated requests say ``Host: example.com``; replace it
(``dataclasses.replace``) when the server checks the host.

An ASGI application, in-process: ``examples/test_my_asgi_app.py`` runs generated requests
through the core to your app and back (``TETHER_TEST_APP=module:app pytest ...``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import strategies as st

from tether.http1 import Data, EndOfMessage, InformationalResponse, Response

__all__ = [
    "GeneratedRequest",
    "GeneratedResponse",
    "effective_headers",
    "field_values",
    "request_streams",
    "requests",
    "responses",
    "tokens",
]


def effective_headers(
    target: bytes, headers: Sequence[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """``headers`` (lowercase names) as a server reports them for a request to ``target``.

    RFC 9112 3.2.2: "When an origin server receives a request with an absolute-form of
    request-target, the origin server MUST ignore the received Host header field (if any)
    and instead use the host information of the request-target." So for such a target
    the ``host`` field becomes the target's authority, where the first Host was (later
    ones are left as they are), or after the other fields when none was sent; any other
    target leaves ``headers`` as they are. :class:`tether.http1.ServerConnection` reports
    requests this way.
    """
    headers = list(headers)
    if target[:1] == b"/" or b"://" not in target:
        return headers
    authority = re.split(rb"[/?#]", target.partition(b"://")[2], maxsplit=1)[0]
    for i, (name, _) in enumerate(headers):
        if name == b"host":
            headers[i] = (b"host", authority)
            return headers
    headers.append((b"host", authority))
    return headers


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
        """What a server's parser should report: lowercase names, values without OWS.

        For an absolute-form target the host is the target's authority, in place of the
        Host field sent (or after the fields, when none was): :func:`effective_headers`.
        """
        return effective_headers(
            self.target, [(name.lower(), value) for name, value in self.wire_headers()]
        )

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
