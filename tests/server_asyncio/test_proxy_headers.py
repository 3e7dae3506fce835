"""--proxy-headers: behind a trusted proxy the app sees the forwarded client and scheme.

Real server, real sockets (httpx and the websockets library from 127.0.0.1, which the
default ``--forwarded-allow-ips`` trusts, as uvicorn's does).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

pytestmark = pytest.mark.timeout(60)

FORWARDED = {"X-Forwarded-For": "198.51.100.9, 203.0.113.7", "X-Forwarded-Proto": "https"}


async def echo_scope(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send(
            {"type": "websocket.send", "text": json.dumps([scope["client"], scope["scheme"]])}
        )
        await send({"type": "websocket.close"})
        return
    body = json.dumps([scope["client"], scope["scheme"]]).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def seen(url: str, headers: dict[str, str]) -> tuple[list[Any], str]:
    client, scheme = httpx.get(url, headers=headers).json()
    return client, scheme


def test_a_trusted_proxy_names_the_client_and_scheme(serve: Any) -> None:
    srv = serve(echo_scope)
    assert seen(srv.url, FORWARDED) == (["203.0.113.7", 0], "https")


def test_without_forwarded_fields_nothing_changes(serve: Any) -> None:
    srv = serve(echo_scope)
    client, scheme = seen(srv.url, {})
    assert client[0] == "127.0.0.1" and client[1] > 0
    assert scheme == "http"


@pytest.mark.parametrize("options", [{"forwarded_allow_ips": "10.0.0.1"}, {"proxy_headers": False}])
def test_an_untrusted_peer_or_the_switch_off_changes_nothing(
    serve: Any, options: dict[str, Any]
) -> None:
    srv = serve(echo_scope, **options)
    client, scheme = seen(srv.url, FORWARDED)
    assert client[0] == "127.0.0.1" and client[1] > 0
    assert scheme == "http"


def test_the_hops_of_trusted_proxies_are_skipped(serve: Any) -> None:
    srv = serve(echo_scope, forwarded_allow_ips="127.0.0.1,203.0.113.0/24")
    assert seen(srv.url, FORWARDED)[0] == ["198.51.100.9", 0]


def test_the_websocket_scope_gets_them_too(serve: Any) -> None:
    srv = serve(echo_scope)
    with ws_connect(srv.ws_url + "/", additional_headers=FORWARDED, open_timeout=10) as ws:
        client, scheme = json.loads(ws.recv(timeout=10))
    assert (client, scheme) == (["203.0.113.7", 0], "wss")


def test_the_access_log_names_the_forwarded_client(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tether.access")
    srv = serve(echo_scope)
    seen(srv.url + "/logged", FORWARDED)
    lines = [r.getMessage() for r in caplog.records if r.name == "tether.access"]
    assert any(line.startswith('203.0.113.7:0 - "GET /logged') for line in lines), lines
