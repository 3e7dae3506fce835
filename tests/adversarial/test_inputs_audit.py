"""An audit of the input-handling helpers as a hostile client sees them: forwarding fields,
form bodies, content coding, trace context, the event-stream parser and the access log.

Each test here failed before the fix it names. Work is measured by counting (regex steps in
a backtracking model of ``re``, bytes allocated under ``tracemalloc``), never by the clock;
what a server does with the input is checked against a real server process over a socket.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.adversarial._servers import ServerProcess, tether_serve, tether_threaded
from tether.serving import TrustedProxies

# ---- forwarding fields: a zone after "%" is not part of an address -----------------------------

#: An IPv6 address with a "zone" that ipaddress takes as it is: a C1 CSI (0x9b, as obs-text in
#: a field value) that clears a terminal, a quote and the fields of a forged access line.
ZONED = b'fe80::1%\x9b2J" 200 0 forged'


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (b"x-forwarded-for", ZONED),
        (b"x-forwarded-for", b"203.0.113.9, " + ZONED),
        (b"forwarded", b'for="[' + ZONED.replace(b'"', b"") + b']"'),
    ],
)
def test_a_zoned_ipv6_hop_is_not_a_client_address(name: bytes, value: bytes) -> None:
    """RFC 7239 section 6 writes a node's address as RFC 3986's IPv6address, which has no zone;
    ``ipaddress`` took any text after "%" as one, so the hop became the client address."""
    proxies = TrustedProxies("*", rfc7239=name == b"forwarded")
    client, _ = proxies.resolve([(name, value)], ("192.0.2.1", 4000), "http")
    assert client is not None
    assert "%" not in client[0]
    assert client[0] in ("192.0.2.1", "203.0.113.9")
    text = value.decode("latin-1")
    assert proxies.resolve_text(text, "", ("192.0.2.1", 4000), "http")[0] in (
        ("192.0.2.1", 4000),
        ("203.0.113.9", 0),
    )


def test_an_ordinary_ipv6_hop_is_still_a_client_address() -> None:
    proxies = TrustedProxies("*")
    for hop in ("2001:db8::7", "::ffff:192.0.2.7"):
        assert proxies.resolve_text(hop, "", ("192.0.2.1", 4000), "http")[0] == (hop, 0)
    rfc = TrustedProxies("*", rfc7239=True)
    value = b'for="[2001:db8::7]:4711"'
    assert rfc.resolve([(b"forwarded", value)], ("192.0.2.1", 1), "http")[0] == ("2001:db8::7", 0)


def test_non_breaking_space_around_a_hop_is_not_ows() -> None:
    """RFC 9110 5.6.1: OWS is SP and HTAB; 0xa0 (obs-text) is part of the item, so the item is
    not an address and the walk stops at it."""
    proxies = TrustedProxies("*")
    got = proxies.resolve([(b"x-forwarded-for", b"\xa0203.0.113.9")], ("192.0.2.1", 1), "http")
    assert got[0] == ("192.0.2.1", 1)


ECHO_CLIENT_ASGI = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = repr(scope["client"]).encode("ascii", "backslashreplace")
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
"""

ECHO_CLIENT_WSGI = """
def app(environ, start_response):
    body = repr(environ["REMOTE_ADDR"]).encode("ascii", "backslashreplace")
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""


def _exchange(server: ServerProcess, request: bytes) -> bytes:
    """Send one request (with ``Connection: close``); the whole response."""
    with server.connect() as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


@pytest.mark.parametrize("server_kind", ["asyncio", "threaded"])
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_forged_zone_reaches_neither_the_application_nor_the_log(
    server_kind: str, log_format: str, tmp_path: Path
) -> None:
    """Through a trusted peer (127.0.0.1, the default), ``X-Forwarded-For: fe80::1%<CSI>...``
    was the client address: the application saw it and the access line wrote the C1 control
    and the forged fields as they were."""
    options = ("--access-log", "--log-format", log_format, "--proxy-headers")
    if server_kind == "asyncio":
        context = tether_serve(tmp_path, *options, app=ECHO_CLIENT_ASGI)
    else:
        context = tether_threaded(tmp_path, *options, app=ECHO_CLIENT_WSGI)
    request = b"GET /zone HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Forwarded-For: "
    with context as server:
        response = _exchange(server, request + ZONED + b"\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 200 "), response
    assert b"127.0.0.1" in response.partition(b"\r\n\r\n")[2]
    # The server has stopped: everything it logged is in the file.
    raw = server.log.read_bytes()
    assert b"GET /zone" in raw, raw
    assert b"\x9b" not in raw and b"forged" not in raw, raw
    if log_format == "json":
        lines = [json.loads(line) for line in raw.splitlines() if b"/zone" in line]
        assert len(lines) == 1, raw
