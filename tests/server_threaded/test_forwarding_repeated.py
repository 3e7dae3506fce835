"""Repeated forwarding fields: one list, as if the proxy had written one field.

The environ joins a repeated field with ", " (PEP 3333) and the server reads the forwarding
fields from there, so the walk over the hops, the chosen hop's scheme and the last host must
come out as the separate fields say. Real server, real sockets: httpx from 127.0.0.1, which the
default --forwarded-allow-ips trusts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.timeout(60)

KEYS = ("REMOTE_ADDR", "wsgi.url_scheme", "HTTP_HOST", "SERVER_PORT", "HTTP_X_FORWARDED_FOR")


def echo_environ(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    body = json.dumps({key: environ.get(key) for key in KEYS}).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def get(server: Any, headers: list[tuple[str, str]]) -> dict[str, Any]:
    host, port = server.address[:2]
    response = httpx.get(f"http://{host}:{port}/", headers=headers)
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def test_repeated_x_forwarded_for_is_walked_as_one_list(serve: Any) -> None:
    # Hops 198.51.100.9, 203.0.113.7, 127.0.0.1: the last is trusted, so the client is the one
    # before it, and its scheme is the matching one of three (one per hop).
    headers = [
        ("X-Forwarded-For", "198.51.100.9, 203.0.113.7"),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-For", "127.0.0.1"),
        ("X-Forwarded-Proto", "https, http"),
    ]
    with serve(echo_environ) as server:
        environ = get(server, headers)
    assert environ["REMOTE_ADDR"] == "203.0.113.7"
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["SERVER_PORT"] == "443"
    assert environ["HTTP_X_FORWARDED_FOR"] == "198.51.100.9, 203.0.113.7, 127.0.0.1"


def test_the_last_of_repeated_x_forwarded_host_wins(serve: Any) -> None:
    headers = [("X-Forwarded-Host", "client.example"), ("X-Forwarded-Host", "example.com:9000")]
    with serve(echo_environ) as server:
        environ = get(server, headers)
    assert (environ["HTTP_HOST"], environ["SERVER_PORT"]) == ("example.com:9000", "9000")


def test_repeated_forwarded_fields_are_one_list_of_elements(serve: Any) -> None:
    headers = [
        ("Forwarded", "for=198.51.100.9"),
        ("Forwarded", 'for=203.0.113.7;proto=https;host="example.com"'),
    ]
    with serve(echo_environ, forwarded_style="rfc7239") as server:
        environ = get(server, headers)
    assert environ["REMOTE_ADDR"] == "203.0.113.7"
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["HTTP_HOST"] == "example.com"


def test_repeated_fields_from_an_untrusted_peer_are_all_removed(serve: Any) -> None:
    headers = [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-For", "198.51.100.9")]
    with serve(echo_environ, forwarded_allow_ips="10.0.0.1") as server:
        environ = get(server, headers)
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["HTTP_X_FORWARDED_FOR"] is None
