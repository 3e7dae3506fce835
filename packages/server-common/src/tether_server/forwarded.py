"""What a trusted proxy says about the original request, beyond the client and the scheme.

:class:`tether.serving.TrustedProxies` decides whom to believe and walks ``X-Forwarded-For`` (or
RFC 7239 ``Forwarded``) for the client address and the scheme. A WSGI server also reports the
host, port and mount point the client used (``HTTP_HOST``, ``SERVER_NAME``, ``SERVER_PORT``,
``SCRIPT_NAME``), and it hands every request field to the application as an ``HTTP_*`` key, so
it must also drop the forwarding fields a client wrote itself: an application that reads
``HTTP_X_FORWARDED_FOR`` must not get a value no trusted proxy wrote (waitress's
``clear_untrusted_proxy_headers``, on by default since waitress 2.0).

- :data:`FORWARDING_FIELDS`: every field name either style of proxy writes.
- :func:`believed_fields`: the ones a trusted peer's request keeps under a ``--forwarded-style``.
- :func:`forwarded_origin`: the host, port and prefix a trusted proxy reports.
- :func:`apply_forwarding`: all of it, on a WSGI environ.

An ASGI server has no such duty: its scope carries the raw headers, and uvicorn passes them on
unchanged; ``tether serve`` does the same and only declines to believe them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tether.http1 import Headers
from tether.serving import TrustedProxies

#: The fields of the ``x-forwarded`` style (X-Real-IP is nginx's; the server does not read it,
#: but it is a client address all the same, so a client must not be able to write it).
X_FORWARDED_FIELDS = frozenset(
    (
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-forwarded-prefix",
        b"x-forwarded-by",
        b"x-real-ip",
    )
)
#: The field of the ``rfc7239`` style.
RFC7239_FIELDS = frozenset((b"forwarded",))
#: Every forwarding field: removed from a request that does not come from a trusted proxy.
FORWARDING_FIELDS = X_FORWARDED_FIELDS | RFC7239_FIELDS

#: The WSGI environ key of each forwarding field, and the field of each key.
_FIELD_OF_KEY = {
    "HTTP_" + name.decode().upper().replace("-", "_"): name for name in sorted(FORWARDING_FIELDS)
}
_FORWARDING_KEYS = frozenset(_FIELD_OF_KEY)
#: The keys of the x-forwarded fields that name the origin (see :func:`forwarded_origin`).
_ORIGIN_KEYS = frozenset(
    ("HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PREFIX")
)
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def believed_fields(rfc7239: bool) -> frozenset[bytes]:
    """The forwarding fields kept from a trusted proxy: those of its style only, as only those
    are read (a client could have slipped the other style's fields past the proxy)."""
    return RFC7239_FIELDS if rfc7239 else X_FORWARDED_FIELDS


#: The environ keys :func:`apply_forwarding` keeps from a trusted proxy, by ``rfc7239``.
_KEPT_KEYS = {
    rfc7239: frozenset(
        key for key, name in _FIELD_OF_KEY.items() if name in believed_fields(rfc7239)
    )
    for rfc7239 in (False, True)
}


@dataclass(frozen=True, slots=True)
class Origin:
    """The host, port and mount point the client used, as a trusted proxy reports them (None:
    not reported, or not well formed)."""

    #: The ``Host`` the client sent to the proxy (``name`` or ``name:port``).
    host: str | None
    #: The port the client connected to (digits).
    port: str | None
    #: The path prefix the proxy removed (``/app``, no trailing slash).
    prefix: str | None


# A host as RFC 9110 7.2 allows it: a reg-name or IPv4 address, or an IPv6 literal, then an
# optional port. Anything else from a header is ignored rather than handed on.
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::[0-9]{1,5})?")
_PORT = re.compile(r"[0-9]{1,5}")
_PREFIX = re.compile(r"/[!-~]*")
# RFC 7239 section 4: forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] ),
# forwarded-pair = token "=" value, value = token / quoted-string (RFC 9110 5.6.4: qdtext and
# quoted-pair are HTAB, SP, visible ASCII and obs-text). Nothing else, no whitespace inside: a
# host with a port is quoted ('host="example.com:8080"'), as TrustedProxies reads elements
# too. Each piece starts with a byte no other can start with, so a failing match gives back
# little: the work is linear in the element (the patterns these replace did findall() over
# the whole field, quadratic: a 64 KiB Forwarded field cost about 20 s of CPU per request).
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"'
_PAIR_TEXT = rf"({_TOKEN})=({_TOKEN}|{_QUOTED})"
_ELEMENT = re.compile(rf"(?:{_PAIR_TEXT})?(?:;(?:{_PAIR_TEXT})?)*")
_PAIR = re.compile(_PAIR_TEXT)
_QUOTED_PAIR = re.compile(r"\\(.)")


def _rightmost(headers: Headers, name: bytes) -> str | None:
    """The last comma-separated value of field ``name``: the one the nearest proxy wrote
    (werkzeug's ProxyFix and waitress, trusting one proxy, read the same one)."""
    found = None
    for field, value in headers:
        if field == name:
            found = value
    if found is None:
        return None
    return found.decode("latin-1").rpartition(",")[2].strip() or None


def _rfc7239_host(headers: Headers) -> str | None:
    """``host=`` of the last ``Forwarded`` element (the one the nearest proxy wrote)."""
    found = None
    for field, value in headers:
        if field == b"forwarded":
            found = value
    if found is None:
        return None
    element = _last_element(found.decode("latin-1")).strip(" \t")
    if _ELEMENT.fullmatch(element) is None:
        return None
    host = None
    for pair in _PAIR.finditer(element):
        if pair[1].lower() == "host":
            if host is not None:
                return None  # RFC 7239 4: "Each parameter MUST NOT occur more than once"
            raw = pair[2]
            host = _QUOTED_PAIR.sub(r"\1", raw[1:-1]) if raw.startswith('"') else raw
    return host


def _last_element(value: str) -> str:
    """The rightmost comma-separated element of a ``Forwarded`` value. Read from the right, as
    :class:`~tether.serving.TrustedProxies` reads them, so an unbalanced quote a client wrote
    on the left cannot swallow the element the nearest proxy appended."""
    tail = value[value.rfind(",") + 1 :]
    if '"' not in tail:
        return tail  # the usual case: no quoted string in the last element
    quoted = False
    for i in range(len(value) - 1, -1, -1):
        char = value[i]
        if char == '"' and (i == 0 or value[i - 1] != "\\"):
            quoted = not quoted
        elif char == "," and not quoted:
            return value[i + 1 :]
    return value


def forwarded_origin(headers: Headers, rfc7239: bool) -> Origin:
    """The host, port and prefix in a trusted proxy's request: ``X-Forwarded-Host``,
    ``-Port`` and ``-Prefix``, or ``host=`` of RFC 7239 ``Forwarded`` (which has no port or
    prefix parameter). Values that are not well formed are left out."""
    if rfc7239:
        host, port, prefix = _rfc7239_host(headers), None, None
    else:
        host = _rightmost(headers, b"x-forwarded-host")
        port = _rightmost(headers, b"x-forwarded-port")
        prefix = _rightmost(headers, b"x-forwarded-prefix")
    if host is not None and _HOST.fullmatch(host) is None:
        host = None
    if port is not None and (_PORT.fullmatch(port) is None or not 0 < int(port) < 65536):
        port = None
    if prefix is not None:
        prefix = prefix.rstrip("/") if _PREFIX.fullmatch(prefix) else None
    return Origin(host, port, prefix)


def _fields(environ: dict[str, Any], keys: Iterable[str]) -> list[tuple[bytes, bytes]]:
    """The believed forwarding fields, as header fields again (what the core's readers take)."""
    return [(_FIELD_OF_KEY[key], environ[key].encode("latin-1")) for key in keys]


def apply_forwarding(environ: dict[str, Any], proxies: TrustedProxies) -> None:
    """Apply a trusted proxy's forwarding fields to a WSGI ``environ``; drop a client's.

    From a peer that is not a trusted proxy every forwarding field is removed (waitress's
    ``clear_untrusted_proxy_headers``): the application must not read a client address, host or
    scheme that only the client vouches for. From a trusted proxy the fields of the other
    ``--forwarded-style`` are removed and its own are applied as waitress and werkzeug's
    ProxyFix apply them: the client to ``REMOTE_ADDR`` (the right-to-left walk of
    :class:`~tether.serving.TrustedProxies`), the scheme to ``wsgi.url_scheme``, the host to
    ``HTTP_HOST`` and ``SERVER_NAME``, the port to ``SERVER_PORT`` (from the host, else
    ``X-Forwarded-Port``, else the scheme's default when the scheme was forwarded) and
    ``X-Forwarded-Prefix`` to ``SCRIPT_NAME``.

    The fields are read from the environ, where a repeated field is one value joined with
    ", " (PEP 3333 and CGI): the same list of hops or elements as the separate fields.
    """
    present = _FORWARDING_KEYS.intersection(environ)
    if not present:
        return  # the usual request from a client: nothing to remove, nothing to apply
    peer = environ.get("REMOTE_ADDR")  # None on a Unix socket
    if not proxies.trusts(peer):
        for key in present:
            del environ[key]
        return
    kept = _KEPT_KEYS[proxies.rfc7239]
    if not present <= kept:  # the other style's fields: only a client could have sent them
        for key in present - kept:
            del environ[key]
        present &= kept
        if not present:
            return
    scheme = environ["wsgi.url_scheme"]
    client_in = (peer, 0) if peer is not None else None
    if proxies.rfc7239:
        client, new_scheme = proxies.resolve(_fields(environ, present), client_in, scheme)
    else:
        # The values as the environ holds them (repeats joined by commas): no bytes again.
        client, new_scheme = proxies.resolve_text(
            environ.get("HTTP_X_FORWARDED_FOR", ""),
            environ.get("HTTP_X_FORWARDED_PROTO", ""),
            client_in,
            scheme,
        )
    if client is not None and client[0] != peer:
        environ["REMOTE_ADDR"] = client[0]
        environ["REMOTE_PORT"] = str(client[1])
    if new_scheme != scheme:
        environ["wsgi.url_scheme"] = new_scheme
    if not proxies.rfc7239 and _ORIGIN_KEYS.isdisjoint(present):
        # No host, port or prefix forwarded (the usual case): a new scheme has its default port.
        if new_scheme != scheme:
            environ["SERVER_PORT"] = _DEFAULT_PORTS[new_scheme]
        return
    origin = forwarded_origin(_fields(environ, present), proxies.rfc7239)
    port = origin.port
    if origin.host is not None:
        # The client spoke to the proxy: without a port of its own, the scheme's default.
        host = origin.host
        server_name, colon, host_port = host.rpartition(":")
        if colon and not host.endswith("]"):
            port = host_port
        else:
            server_name = host
            if port is None:
                port = _DEFAULT_PORTS[new_scheme]
            elif port != _DEFAULT_PORTS[new_scheme]:
                host = f"{host}:{port}"
        environ["HTTP_HOST"] = host
        environ["SERVER_NAME"] = server_name
    elif port is None and new_scheme != scheme:
        port = _DEFAULT_PORTS[new_scheme]
    if port is not None:
        environ["SERVER_PORT"] = port
    if origin.prefix is not None:
        environ["SCRIPT_NAME"] = origin.prefix


__all__ = [
    "FORWARDING_FIELDS",
    "RFC7239_FIELDS",
    "X_FORWARDED_FIELDS",
    "Origin",
    "apply_forwarding",
    "believed_fields",
    "forwarded_origin",
]
