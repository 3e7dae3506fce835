"""Differential tests against h11.

On generated valid requests both parsers must report the same method, target,
version, fields, body and trailers. Where we refuse what h11 accepts, the case
below names the RFC sentence that lets (or makes) a recipient refuse it; each
case also checks that h11 really does accept it, so the table stays honest.
"""

from __future__ import annotations

import h11
import pytest
from hypothesis import assume, given

from tests.core._drive import serve
from tether.errors import ProtocolError
from tether.strategies import GeneratedRequest, effective_headers, requests


def h11_parse(wire: bytes) -> tuple[h11.Request, bytes, list[tuple[bytes, bytes]]]:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(wire)
    request = conn.next_event()
    assert isinstance(request, h11.Request), request
    body = []
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Data):
            body.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return request, b"".join(body), list(event.headers.raw_items())
        else:
            raise AssertionError(event)


def _h11_lower(items: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower(), value) for name, value in items]


@given(requests())
def test_same_as_h11_on_valid_requests(request: GeneratedRequest) -> None:
    # h11 refuses BWS before ';' in chunk extensions, which RFC 9112 7.1.1 allows
    # (chunk-ext = *( BWS ";" BWS chunk-ext-name ...)): the one place h11 is stricter.
    assume(not any(ext.startswith(b" ") for ext in request.extensions))
    wire = request.to_bytes()
    theirs, their_body, their_trailers = h11_parse(wire)
    seen, _ = serve([wire])
    ours = seen[0]
    assert ours.request.method == theirs.method
    assert ours.request.target == theirs.target
    assert ours.request.http_version == theirs.http_version
    # RFC 9112 3.2.2: for an absolute-form target we report its authority as the host.
    assert list(ours.request.headers) == effective_headers(
        ours.request.target, _h11_lower(list(theirs.headers.raw_items()))
    )
    assert ours.body == their_body
    assert ours.trailers == _h11_lower(their_trailers)


GOOD = b"GET / HTTP/1.1\r\nHost: example.com\r\n"

# (id, request bytes, the RFC sentence that makes refusing right)
STRICTER_THAN_H11 = [
    (
        "bare-lf-line-endings",
        b"GET / HTTP/1.1\nHost: example.com\n\n",
        "RFC 9112 2.2: 'a recipient MAY recognize a single LF as a line terminator' - MAY, "
        "and accepting it is a known request-smuggling vector, so we do not.",
    ),
    (
        "duplicate-identical-content-length",
        GOOD + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        "RFC 9110 8.6: the recipient 'MAY either reject the message as invalid or replace "
        "that invalid field value with a single instance' - we reject.",
    ),
    (
        "content-length-list",
        GOOD + b"Content-Length: 3, 3\r\n\r\nabc",
        "RFC 9110 8.6, as above: a list of identical values may be rejected.",
    ),
    (
        "malformed-chunk-extension",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;\x01\r\nabc\r\n0\r\n\r\n",
        "RFC 9112 7.1.1: chunk-ext = *( BWS ';' BWS chunk-ext-name [ BWS '=' BWS chunk-ext-val ] ); "
        "a control byte is no token, and unchecked extensions hide smuggling payloads.",
    ),
    (
        "chunk-size-trailing-space",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n",
        "RFC 9112 7.1: chunk = chunk-size [ chunk-ext ] CRLF - whitespace is only allowed (as BWS) "
        "before a ';'.",
    ),
    (
        "transfer-encoding-in-http10",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "RFC 9112 6.1: 'A server or client that receives an HTTP/1.0 message containing a "
        "Transfer-Encoding header field MUST treat the message as if the framing is faulty'.",
    ),
    (
        "target-not-a-form",
        b"GET index.html HTTP/1.1\r\nHost: a\r\n\r\n",
        "RFC 9112 3.2: request-target = origin-form / absolute-form / authority-form / "
        "asterisk-form; 'index.html' is none of them.",
    ),
    (
        "asterisk-form-with-get",
        b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
        "RFC 9112 3.2.4: 'The asterisk-form of request-target is only used for a server-wide "
        "OPTIONS request'.",
    ),
    (
        "fragment-in-target",
        b"GET /public#/../admin HTTP/1.1\r\nHost: a\r\n\r\n",
        "RFC 9112 3.2: no request-target form has a fragment, RFC 9110 4.2.5: a fragment is "
        "not sent, and RFC 9112 3.2: 'Recipients of an invalid request-line SHOULD respond "
        "with either a 400 (Bad Request) error or a 301'. A proxy that cuts the target at '#' "
        "would route another path than the server sees.",
    ),
    (
        "host-with-path",
        b"GET / HTTP/1.1\r\nHost: example.com/evil\r\n\r\n",
        "RFC 9112 3.2: a server MUST respond with 400 to a request 'with a Host header field "
        "with an invalid field value'; Host = uri-host [ ':' port ].",
    ),
]


@pytest.mark.parametrize(
    ("wire", "reason"),
    [case[1:] for case in STRICTER_THAN_H11],
    ids=[c[0] for c in STRICTER_THAN_H11],
)
def test_stricter_than_h11(wire: bytes, reason: str) -> None:
    h11_parse(wire)  # h11 accepts it...
    with pytest.raises(ProtocolError) as info:  # ...and we refuse, for the reason given
        serve([wire], eof=True)
    assert info.value.status_hint == 400, reason
