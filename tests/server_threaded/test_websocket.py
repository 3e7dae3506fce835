"""WebSocket on the threaded server: the blocking API with the websockets client, and Autobahn."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from threaded_helpers import connect, read_until_closed, running, wait_for
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from tests.processes import RUNNING
from tether_threaded import WebSocket, WebSocketClosed, websocket_app

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _echo(ws: WebSocket) -> None:
    while True:
        message = ws.receive()
        if message == "close please":
            ws.close(4000, "as asked")
            return
        if message == "fail please":
            raise RuntimeError("handler bug")
        ws.send(message)


def _ws_url(server: Any) -> str:
    return server.url().replace("http://", "ws://")


def test_echo_text_binary_and_large() -> None:
    with (
        running(websocket_app(_echo)) as server,
        ws_connect(_ws_url(server), max_size=None) as ws,
    ):
        ws.send("hello")
        assert ws.recv() == "hello"
        ws.send(b"\x00\xff" * 10)
        assert ws.recv() == b"\x00\xff" * 10
        big = os.urandom(3 * 1024 * 1024)
        ws.send(big)
        assert ws.recv() == big
        ws.ping(b"are you there").wait(5)


def test_without_compression() -> None:
    with (
        running(websocket_app(_echo, compress=False)) as server,
        ws_connect(_ws_url(server), compression=None) as ws,
    ):
        ws.send("plain")
        assert ws.recv() == "plain"


def test_server_close_code_reaches_the_client() -> None:
    with running(websocket_app(_echo)) as server, ws_connect(_ws_url(server)) as ws:
        ws.send("close please")
        with pytest.raises(ConnectionClosed) as info:
            ws.recv()
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 4000
    assert info.value.rcvd.reason == "as asked"


def test_handler_error_closes_with_1011() -> None:
    with running(websocket_app(_echo)) as server, ws_connect(_ws_url(server)) as ws:
        ws.send("fail please")
        with pytest.raises(ConnectionClosed) as info:
            ws.recv()
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1011


def test_client_close_is_seen_by_the_handler() -> None:
    seen: list[int] = []
    done = threading.Event()

    def handler(ws: WebSocket) -> None:
        try:
            ws.receive()
        except WebSocketClosed as exc:
            seen.append(exc.code)
            done.set()
            raise

    with running(websocket_app(handler)) as server:
        with ws_connect(_ws_url(server)) as ws:
            ws.close(1001, "leaving")
        assert done.wait(10)
    assert seen == [1001]


def test_a_plain_app_ended_by_the_client_s_close_logs_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The package docstring's loop, without websocket_app: the client's close ends it with
    # WebSocketClosed out of receive(). That is the session's end, not an application error.
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        ws = environ["tether.websocket"].accept()
        while True:
            ws.send(ws.receive())

    with running(app) as server:
        loop = server._loop
        assert loop is not None
        with ws_connect(_ws_url(server)) as ws:
            ws.send("hello")
            assert ws.recv() == "hello"
        # The worker logs before it ends the session, and the connection goes after that.
        assert wait_for(lambda: not loop.conns)
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text


def test_subprotocol_negotiation() -> None:
    def handler(ws: WebSocket) -> None:
        ws.send(ws.subprotocol or "none")

    with (
        running(websocket_app(handler, subprotocols=["v2", "v1"])) as server,
        ws_connect(_ws_url(server), subprotocols=["v1", "v2"]) as ws,  # type: ignore[list-item]
    ):
        assert ws.subprotocol == "v2"
        assert ws.recv() == "v2"


def test_plain_request_to_a_websocket_endpoint_is_426() -> None:
    with running(websocket_app(_echo)) as server:
        r = httpx.get(server.url())
    assert r.status_code == 426


def test_bad_handshake_is_refused_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with running(websocket_app(_echo)) as server:
        sock = connect(server)
        sock.sendall(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n"
        )
        raw = read_until_closed(sock)
    assert raw.startswith(b"HTTP/1.1 400 ")
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_a_handler_that_returns_with_a_full_inbox_still_completes_the_close() -> None:
    """Messages the handler never took must not hold reading back: the client's reply to the
    server's close is read at once, not after ``ws_close_timeout`` (10 s)."""
    filled = threading.Event()

    def handler(ws: WebSocket) -> None:
        filled.wait(10)  # returns without reading what the client sent

    piece = b"x" * (256 * 1024)
    with running(websocket_app(handler)) as server, ws_connect(_ws_url(server)) as ws:
        for _ in range(6):  # past the inbox's 1 MiB: the server stops reading
            ws.send(piece)
        filled.set()
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as info:
            ws.recv()
        elapsed = time.monotonic() - started
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1000
    assert elapsed < 3


def test_shutdown_closes_websockets_with_1001() -> None:
    server_cm = running(websocket_app(_echo))
    server = server_cm.__enter__()
    try:
        with ws_connect(_ws_url(server)) as ws:
            ws.send("x")
            assert ws.recv() == "x"
            server.shutdown(wait=False)
            with pytest.raises(ConnectionClosed) as info:
                ws.recv()
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1001
    finally:
        server_cm.__exit__(None, None, None)


# ---- Autobahn ----------------------------------------------------------------------------------

#: Sections 1-10 whole and, compressed, every case of 12.1 and 13.1 and one of each other
#: subsection (tests.autobahn.SERVER_SAMPLE_GROUPS): tether serve's asyncio run takes the rest
#: over the same core. TETHER_AUTOBAHN_FULL=1 runs every case.
_FULL = os.environ.get("TETHER_AUTOBAHN_FULL") == "1"
_BUDGET = 3000.0 if _FULL else 400.0


@pytest.fixture(scope="module")
def echo_process() -> Iterator[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(HERE) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "tether_threaded._cli", "ws_echo_app:app", "--port", "0",
            "--threads", "8", "--no-access-log", "--log-level", "info",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=HERE,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert RUNNING in line, line
        yield line.rsplit("http://", 1)[1].split()[0]
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.slow
@pytest.mark.timeout(_BUDGET + 60)
def test_autobahn(echo_process: str) -> None:
    """Autobahn via kosoku: every case OK, NON-STRICT or INFORMATIONAL."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        from tests.autobahn import SERVER_SAMPLE_GROUPS, run_autobahn
    except ImportError:
        pytest.skip("tests/autobahn.py (the shared harness) is not available")
    report = run_autobahn(
        echo_process,
        cases=None if _FULL else SERVER_SAMPLE_GROUPS,
        timeout=_BUDGET,
        concurrency=2,
    )
    print(report.summary())
    assert report.ok, report.summary()
