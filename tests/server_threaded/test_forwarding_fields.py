"""Forwarding fields in the WSGI environ: removed unless a trusted proxy sent them, applied when
one did (as waitress and werkzeug's ProxyFix apply them).

Real server, real sockets: httpx from 127.0.0.1, which the default --forwarded-allow-ips trusts.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.timeout(60)

KEYS = (
    "REMOTE_ADDR",
    "wsgi.url_scheme",
    "HTTP_HOST",
    "SERVER_NAME",
    "SERVER_PORT",
    "SCRIPT_NAME",
    "PATH_INFO",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_PREFIX",
    "HTTP_X_FORWARDED_BY",
    "HTTP_X_REAL_IP",
    "HTTP_FORWARDED",
)

#: Every forwarding field a client could write, in both styles.
ALL_FIELDS = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "example.com",
    "X-Forwarded-Port": "8443",
    "X-Forwarded-Prefix": "/app",
    "X-Forwarded-By": "198.51.100.1",
    "X-Real-IP": "203.0.113.7",
    "Forwarded": "for=203.0.113.7;proto=https;host=example.com",
}


def echo_environ(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    body = json.dumps({key: environ.get(key) for key in KEYS}).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def get(server: Any, headers: dict[str, str], path: str = "/x") -> dict[str, Any]:
    host, port = server.address[:2]
    response = httpx.get(f"http://{host}:{port}{path}", headers=headers)
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("options", [{"forwarded_allow_ips": "10.0.0.1"}, {}])
def test_a_client_cannot_hand_the_app_forwarding_fields(serve: Any, options: Any) -> None:
    # Untrusted peer: every field goes. Trusted peer ({}): the other style's fields go.
    with serve(echo_environ, **options) as server:
        environ = get(server, ALL_FIELDS)
        address = "{}:{}".format(*server.address[:2])
    if options:
        assert environ["REMOTE_ADDR"] == "127.0.0.1"
        assert environ["wsgi.url_scheme"] == "http"
        assert environ["HTTP_HOST"] == address
        assert environ["SCRIPT_NAME"] == ""
        for key in KEYS[7:]:
            assert environ[key] is None, key
    else:
        assert environ["HTTP_FORWARDED"] is None
        assert environ["HTTP_X_FORWARDED_HOST"] == "example.com"


def test_a_trusted_proxy_names_host_port_scheme_and_prefix(serve: Any) -> None:
    with serve(echo_environ) as server:
        environ = get(server, ALL_FIELDS)
    assert environ["REMOTE_ADDR"] == "203.0.113.7"
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["HTTP_HOST"] == "example.com:8443"
    assert environ["SERVER_NAME"] == "example.com"
    assert environ["SERVER_PORT"] == "8443"
    assert environ["SCRIPT_NAME"] == "/app"
    assert environ["PATH_INFO"] == "/x"


def test_a_port_in_the_forwarded_host_wins_and_a_default_port_is_implied(serve: Any) -> None:
    with serve(echo_environ) as server:
        with_port = get(server, {"X-Forwarded-Host": "example.com:9000", "X-Forwarded-Port": "1"})
        default = get(server, {"X-Forwarded-Host": "example.com", "X-Forwarded-Proto": "https"})
        junk = get(server, {"X-Forwarded-Host": "a b", "X-Forwarded-Port": "x"})
        port = str(server.address[1])
    assert (with_port["HTTP_HOST"], with_port["SERVER_PORT"]) == ("example.com:9000", "9000")
    assert (default["HTTP_HOST"], default["SERVER_PORT"]) == ("example.com", "443")
    assert junk["SERVER_NAME"] == "127.0.0.1" and junk["SERVER_PORT"] == port


def test_rfc7239_style_reads_forwarded_only(serve: Any) -> None:
    with serve(echo_environ, forwarded_style="rfc7239") as server:
        environ = get(server, ALL_FIELDS)
    assert environ["REMOTE_ADDR"] == "203.0.113.7"
    assert environ["wsgi.url_scheme"] == "https"
    assert (environ["HTTP_HOST"], environ["SERVER_PORT"]) == ("example.com", "443")
    assert environ["HTTP_FORWARDED"] == ALL_FIELDS["Forwarded"]
    for key in KEYS[7:14]:
        assert environ[key] is None, key


def test_without_proxy_headers_the_fields_are_the_apps(serve: Any) -> None:
    # --no-proxy-headers: the server neither believes nor removes them (an app may run its own
    # ProxyFix middleware).
    with serve(echo_environ, proxy_headers=False) as server:
        environ = get(server, ALL_FIELDS)
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["HTTP_X_FORWARDED_FOR"] == "203.0.113.7"
    assert environ["HTTP_FORWARDED"] == ALL_FIELDS["Forwarded"]


def test_a_unix_socket_peer_is_localhost(serve: Any, tmp_path: Path) -> None:
    path = str(tmp_path / "s")
    with serve(echo_environ, uds=path), socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    environ = json.loads(data.partition(b"\r\n\r\n")[2])
    assert environ["REMOTE_ADDR"] == "localhost"
