"""WebSockets through the proxies: the upgrade, echo, ping/pong, close codes, compression."""

from __future__ import annotations

import contextlib

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.proxies.helpers import Stack

pytestmark = pytest.mark.timeout(60)


def _ws_url(deployed: Stack) -> str:
    return f"ws://127.0.0.1:{deployed.port}/ws"


def test_websocket_echo_ping_and_close_code(deployed: Stack) -> None:
    with connect(_ws_url(deployed), open_timeout=10, close_timeout=5) as ws:
        assert ws.response is not None and ws.response.status_code == 101
        for n in range(20):
            ws.send(f"text {n}")
            assert ws.recv(timeout=5) == f"text {n}"
            ws.send(bytes([n]) * (n * 1000))
            assert ws.recv(timeout=5) == bytes([n]) * (n * 1000)
        assert ws.ping(b"are you there").wait(5)
        ws.send("close:4001")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "bye")


def test_websocket_permessage_deflate(deployed: Stack) -> None:
    with connect(_ws_url(deployed), open_timeout=10, compression="deflate") as ws:
        assert ws.response is not None
        offered = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert offered.startswith("permessage-deflate"), offered
        message = "compressible " * 10_000
        ws.send(message)
        assert ws.recv(timeout=5) == message


def test_websockets_alongside_plain_requests(deployed: Stack) -> None:
    # Several sessions at once, through the same proxy whose upstream pool serves plain
    # requests in between: each session only ever sees its own messages.
    with contextlib.ExitStack() as stack:
        sessions = [
            stack.enter_context(connect(_ws_url(deployed), open_timeout=10)) for _ in range(4)
        ]
        for round_ in range(5):
            for n, ws in enumerate(sessions):
                ws.send(f"{n}:{round_}")
            assert httpx.get(deployed.url + "/between", timeout=10).status_code == 200
            for n, ws in enumerate(sessions):
                assert ws.recv(timeout=5) == f"{n}:{round_}"
