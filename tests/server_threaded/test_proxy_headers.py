"""--proxy-headers on the WSGI server: REMOTE_ADDR and wsgi.url_scheme behind a trusted proxy.

Real server, real sockets (httpx from 127.0.0.1, which the default --forwarded-allow-ips trusts).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.timeout(60)

FORWARDED = {"X-Forwarded-For": "198.51.100.9, 203.0.113.7", "X-Forwarded-Proto": "https"}


def echo_environ(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    body = json.dumps(
        [environ.get("REMOTE_ADDR"), environ.get("REMOTE_PORT"), environ["wsgi.url_scheme"]]
    ).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def url(server: Any) -> str:
    host, port = server.address[:2]
    return f"http://{host}:{port}/"


def test_a_trusted_proxy_names_the_client_and_scheme(serve: Any) -> None:
    with serve(echo_environ) as server:
        assert httpx.get(url(server), headers=FORWARDED).json() == ["203.0.113.7", "0", "https"]


@pytest.mark.parametrize(
    "options", [{}, {"forwarded_allow_ips": "10.0.0.1"}, {"proxy_headers": False}]
)
def test_otherwise_the_peer_stays(serve: Any, options: dict[str, Any]) -> None:
    headers = FORWARDED if options else {}
    with serve(echo_environ, **options) as server:
        address, port, scheme = httpx.get(url(server), headers=headers).json()
    assert address == "127.0.0.1" and int(port) > 0
    assert scheme == "http"


def test_the_hops_of_trusted_proxies_are_skipped(serve: Any) -> None:
    with serve(echo_environ, forwarded_allow_ips="127.0.0.1, 203.0.113.0/24") as server:
        assert httpx.get(url(server), headers=FORWARDED).json()[0] == "198.51.100.9"


def test_the_access_log_names_the_forwarded_client(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tether.access")
    with serve(echo_environ, access_log=True) as server:
        httpx.get(url(server) + "logged", headers=FORWARDED)
    lines = [r.getMessage() for r in caplog.records if r.name == "tether.access"]
    assert any(line.startswith('203.0.113.7:0 - "GET /logged') for line in lines), lines
