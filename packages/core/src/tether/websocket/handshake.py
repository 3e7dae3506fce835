"""The opening handshake (RFC 6455 section 4), as pure functions over headers.

Server side: :func:`server_handshake` takes the request (method, version and
headers from ``tether.http1`` or any other parser) and returns either
:class:`Accepted`, whose ``headers`` go into the ``101 Switching Protocols``
response, or :class:`Rejected`, a complete 426/400 answer.

Client side: :func:`client_request_headers` builds the request's headers and
:func:`check_server_response` validates the answer, returning what was
negotiated. The caller supplies the 16 random bytes of the key
(:func:`make_key`): the core has no hidden randomness.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tether.errors import LocalProtocolError
from tether.http1._abnf import ABSOLUTE_FORM, HOST
from tether.websocket.deflate import (
    DeflateOptions,
    check_client_response,
    client_offer,
    negotiate_server,
    parse_extensions,
)
from tether.websocket.errors import HandshakeError, UpgradeRequired

#: RFC 6455 1.3: the GUID concatenated with the key before hashing.
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: (name, value) pairs; names are compared case-insensitively.
Headers = Sequence[tuple[bytes, bytes]]


class RequestLike(Protocol):
    """What :func:`server_handshake` reads from a request (``tether.http1.Request`` fits)."""

    @property
    def method(self) -> bytes:
        """The request method, e.g. ``b"GET"``."""

    @property
    def headers(self) -> Headers:
        """The request's header fields."""

    @property
    def http_version(self) -> bytes:
        """``b"1.1"`` or ``b"1.0"``."""


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid upgrade: send ``InformationalResponse(101, headers)``, then speak WebSocket."""

    #: Headers of the 101 response (Upgrade, Connection, Sec-WebSocket-Accept, and the
    #: negotiated Sec-WebSocket-Protocol / Sec-WebSocket-Extensions when any).
    headers: list[tuple[bytes, bytes]]
    #: The chosen subprotocol, or None.
    subprotocol: str | None = None
    #: The agreed permessage-deflate parameters (give them to ``Connection(deflate=...)``),
    #: or None when compression is not in use.
    deflate: DeflateOptions | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """An invalid upgrade: send ``Response(status_code, headers)`` with ``body``, then close.

    ``headers`` carry Content-Length and ``Connection: close`` (a 426 also
    ``Upgrade: websocket`` and ``Sec-WebSocket-Version: 13``).

    ``error`` is the :class:`HandshakeError` (426 or 400) that explains why.
    """

    status_code: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    error: HandshakeError = field(compare=False)


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What a client learns from a valid 101 response."""

    subprotocol: str | None = None
    deflate: DeflateOptions | None = None


def accept_key(key: bytes) -> bytes:
    """The ``Sec-WebSocket-Accept`` value for a ``Sec-WebSocket-Key`` (RFC 6455 4.2.2 step 5.4)."""
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


def make_key(nonce: bytes) -> bytes:
    """A ``Sec-WebSocket-Key`` from 16 random bytes the caller supplies (e.g. ``os.urandom(16)``)."""
    if len(nonce) != 16:
        raise ValueError("the WebSocket key nonce must be exactly 16 bytes (RFC 6455 4.1)")
    return base64.b64encode(nonce)


def _values(headers: Headers, name: bytes) -> list[bytes]:
    return [v for n, v in headers if n.lower() == name]


def _tokens(values: Iterable[bytes]) -> list[bytes]:
    # Comma-separated lists (RFC 9110 5.6.1), empty elements ignored, compared lowercase.
    out = []
    for value in values:
        for raw in value.split(b","):
            item = raw.strip(b" \t")
            if item:
                out.append(item.lower())
    return out


def wants_websocket(headers: Headers) -> bool:
    """Whether a request asks to upgrade to WebSocket (``Upgrade`` lists ``websocket``).

    A server uses this to route a request to its WebSocket handling; the
    request is then validated by :func:`server_handshake`.
    """
    return b"websocket" in _tokens(_values(headers, b"upgrade"))


def _reject(exc: HandshakeError) -> Rejected:
    body = (exc.message + "\n").encode("utf-8", "replace")
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    if exc.status_hint == 426:
        # RFC 9110 15.5.22: a 426 MUST carry Upgrade; RFC 6455 4.4: name the version we speak.
        headers += [
            (b"upgrade", b"websocket"),
            (b"connection", b"Upgrade, close"),
            (b"sec-websocket-version", b"13"),
        ]
    else:
        # The docs say to close after a rejection: the response says so too.
        headers.append((b"connection", b"close"))
    headers.append((b"content-length", str(len(body)).encode("ascii")))
    return Rejected(exc.status_hint, headers, body, exc)


def _valid_key(key: bytes) -> bool:
    # RFC 6455 4.1: base64 of exactly 16 bytes; demand the canonical 24-character form.
    if len(key) != 24:
        return False
    try:
        raw = base64.b64decode(key, validate=True)
    except binascii.Error:
        return False
    return len(raw) == 16 and base64.b64encode(raw) == key


def server_handshake(
    request: RequestLike,
    *,
    subprotocols: Sequence[str] = (),
    deflate: DeflateOptions | None = None,
) -> Accepted | Rejected:
    """Validate a WebSocket upgrade request and negotiate (RFC 6455 4.2.1 and 4.2.2).

    ``subprotocols`` are the ones this server speaks, in order of preference:
    the first one the client also offered is chosen. ``deflate`` enables
    permessage-deflate negotiation with these options (None: never compress).

    Returns :class:`Rejected` with 426 (and ``Sec-WebSocket-Version: 13``)
    when the request is not a version-13 WebSocket upgrade, 400 when it is
    one but malformed.
    """
    try:
        return _server_handshake(request, subprotocols, deflate)
    except HandshakeError as exc:
        return _reject(exc)


def _single(headers: Headers, name: bytes) -> bytes | None:
    values = _values(headers, name)
    if len(values) > 1:
        raise HandshakeError(f"more than one {name.decode()} header")
    return values[0].strip(b" \t") if values else None


def _server_handshake(
    request: RequestLike, subprotocols: Sequence[str], deflate: DeflateOptions | None
) -> Accepted:
    headers = request.headers
    if not wants_websocket(headers):
        raise UpgradeRequired("this resource requires a WebSocket upgrade")
    if request.method != b"GET":
        raise HandshakeError("a WebSocket upgrade must use GET (RFC 6455 4.1)")
    if request.http_version != b"1.1":
        raise HandshakeError("a WebSocket upgrade needs HTTP/1.1 (RFC 6455 4.1)")
    if not _values(headers, b"host"):
        raise HandshakeError("a WebSocket upgrade needs a Host header (RFC 6455 4.1)")
    if _values(headers, b"transfer-encoding") or any(
        v.strip(b" \t") != b"0" for v in _values(headers, b"content-length")
    ):
        # Strict: RFC 9110 9.3.1 gives content in a GET no meaning and says it "might lead
        # some implementations to reject the request and close the connection because of its
        # potential as a request smuggling attack". Here the bytes after the head become the
        # WebSocket stream, and where that begins would depend on who honours the framing.
        raise HandshakeError("a WebSocket upgrade request must not have content (RFC 9110 9.3.1)")
    if b"upgrade" not in _tokens(_values(headers, b"connection")):
        raise HandshakeError("Connection must include 'upgrade' (RFC 6455 4.1)")
    version = _single(headers, b"sec-websocket-version")
    if version != b"13":
        raise UpgradeRequired("only WebSocket version 13 is supported (RFC 6455 4.4)")
    key = _single(headers, b"sec-websocket-key")
    if key is None or not _valid_key(key):
        raise HandshakeError("Sec-WebSocket-Key must be 16 bytes in base64 (RFC 6455 4.1)")

    out = [
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-accept", accept_key(key)),
    ]
    chosen: str | None = None
    # Subprotocol names are matched exactly: RFC 6455 defines no case folding for them,
    # unlike the Upgrade and Connection tokens.
    offered = [
        item.strip(b" \t")
        for value in _values(headers, b"sec-websocket-protocol")
        for item in value.split(b",")
    ]
    if offered:
        for proto in subprotocols:
            if proto.encode("ascii") in offered:
                chosen = proto
                break
        if chosen is not None:
            out.append((b"sec-websocket-protocol", chosen.encode("ascii")))
    params: DeflateOptions | None = None
    ext_values = _values(headers, b"sec-websocket-extensions")
    if ext_values:
        extensions = parse_extensions(ext_values)
        if deflate is not None:
            negotiated = negotiate_server(extensions, deflate)
            if negotiated is not None:
                params, value = negotiated
                out.append((b"sec-websocket-extensions", value))
    return Accepted(out, chosen, params)


def client_request_headers(
    host: bytes,
    key: bytes,
    *,
    subprotocols: Sequence[str] = (),
    deflate: DeflateOptions | None = None,
    origin: bytes | None = None,
    target: bytes | None = None,
) -> list[tuple[bytes, bytes]]:
    """The headers of a client's upgrade request (RFC 6455 4.1), to send with ``GET <target>``.

    ``host`` is the authority of the WebSocket URI, ``host[:port]`` (no scheme,
    path or userinfo: ``ws://example.com/chat`` is split into the host
    ``example.com`` and the target ``/chat``). ``key`` comes from
    :func:`make_key`; keep it to check the response.

    Pass the request ``target`` to have it checked against ``host``: a GET's
    target is origin-form (``/chat?room=1``) or, through a proxy, absolute-form
    (``http://example.com/chat``), whose authority must then equal ``host``
    (RFC 9112 3.2.2: the Host field is that authority). Authority-form
    (``example.com:443``) belongs to CONNECT and asterisk-form to OPTIONS, so
    both are refused, as is a ``ws://``/``wss://`` target (RFC 6455 3: those
    URIs are requested by their path; servers refuse other schemes, RFC 9110
    4.2). Raises :class:`~tether.errors.LocalProtocolError` for any of these.
    """
    if not host or HOST.fullmatch(host) is None or host.startswith(b":"):
        raise LocalProtocolError(
            f"host {host[:64]!r} is not host[:port] (give the URI's path as the target)"
        )
    if target is not None:
        _check_target(target, host)
    headers = [
        (b"host", host),
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-key", key),
        (b"sec-websocket-version", b"13"),
    ]
    if origin is not None:
        headers.append((b"origin", origin))
    if subprotocols:
        headers.append((b"sec-websocket-protocol", ", ".join(subprotocols).encode("ascii")))
    if deflate is not None:
        headers.append((b"sec-websocket-extensions", client_offer(deflate)))
    return headers


def _check_target(target: bytes, host: bytes) -> None:
    """Refuse a GET target that is not origin- or absolute-form, or names another authority."""
    if not target or any(b <= 0x20 or b >= 0x7F for b in target):
        raise LocalProtocolError("the request target must be visible US-ASCII, without spaces")
    if target[0] == 0x2F:  # "/": origin-form
        return
    if ABSOLUTE_FORM.fullmatch(target) is None:
        raise LocalProtocolError(
            f"target {target[:64]!r} is neither origin-form (/path) nor absolute-form "
            "(authority-form is for CONNECT, asterisk-form for OPTIONS)"
        )
    scheme, _, rest = target.partition(b"://")
    if scheme.lower() not in (b"http", b"https"):
        raise LocalProtocolError(
            f"a {scheme.decode('ascii')}:// target: send the URI's path as the target "
            "and its authority as host"
        )
    authority = _AUTHORITY_END.split(rest, 1)[0]
    if authority.lower() != host.lower():
        raise LocalProtocolError(
            f"the target's authority {authority[:64]!r} is not the Host {host[:64]!r} "
            "(RFC 9112 3.2.2)"
        )


_AUTHORITY_END = re.compile(rb"[/?#]")


def check_server_response(
    status_code: int,
    headers: Headers,
    key: bytes,
    *,
    subprotocols: Sequence[str] = (),
    deflate: DeflateOptions | None = None,
) -> Negotiated:
    """Validate the server's answer to our upgrade request (RFC 6455 4.2.2 / 4.1 client rules).

    Raises :class:`HandshakeError` unless the answer is a 101 with the right
    ``Sec-WebSocket-Accept``, a subprotocol we offered (or none) and a
    permessage-deflate answer compatible with our offer.
    """
    if status_code != 101:
        raise HandshakeError(f"the server answered {status_code}, not 101")
    if b"websocket" not in _tokens(_values(headers, b"upgrade")):
        raise HandshakeError("the response lacks Upgrade: websocket")
    if b"upgrade" not in _tokens(_values(headers, b"connection")):
        raise HandshakeError("the response lacks Connection: upgrade")
    accept = _single(headers, b"sec-websocket-accept")
    if accept != accept_key(key):
        raise HandshakeError("wrong Sec-WebSocket-Accept")
    chosen: str | None = None
    protocol = _single(headers, b"sec-websocket-protocol")
    if protocol is not None:
        chosen = protocol.decode("ascii", "replace")
        if chosen not in subprotocols:
            raise HandshakeError(f"the server chose a subprotocol we did not offer: {chosen}")
    params = check_client_response(
        parse_extensions(_values(headers, b"sec-websocket-extensions")), deflate
    )
    return Negotiated(chosen, params)


__all__ = [
    "Accepted",
    "Negotiated",
    "Rejected",
    "RequestLike",
    "accept_key",
    "check_server_response",
    "client_request_headers",
    "make_key",
    "server_handshake",
    "wants_websocket",
]
