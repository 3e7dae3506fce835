"""HTTP/1.1 through the anyio server over real sockets, on asyncio and on trio.

Clients are httpx and raw sockets (where the test needs to control bytes and timing).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import Any

import anyio
import httpx
import pytest

from tests.server_asyncio.conftest import read_response, recv_until_closed

pytestmark = pytest.mark.timeout(60)


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
        }
    )
    await send({"type": "http.response.body", "body": b"Hello, world!"})


class Recorder:
    """An app that records each scope and answers with a JSON-free summary."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.scopes.append(scope)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def test_hello_date_server_and_keep_alive(serve: Any) -> None:
    recorder = Recorder()
    srv = serve(recorder)
    with httpx.Client(base_url=srv.url) as client:
        first = client.get("/")
        second = client.post("/", content=b"abc")
    assert first.status_code == 200
    assert first.headers["server"] == "tether"
    # RFC 9110 6.6.1: an origin server with a clock MUST send Date.
    assert first.headers["date"].endswith(" GMT")
    assert second.content == b"abc"
    # Both requests used one connection (keep-alive): same client port.
    assert recorder.scopes[0]["client"] == recorder.scopes[1]["client"]


def test_scope(serve: Any) -> None:
    recorder = Recorder()
    srv = serve(recorder, root_path="/mount")
    sock = srv.connect()
    sock.sendall(b"GET /a%20b/%C3%A9?x=1&y=%20 HTTP/1.1\r\nHost: example.org\r\nX-Thing: V\r\n\r\n")
    status, _, _ = read_response(sock)
    sock.close()
    assert status == 200
    scope = recorder.scopes[0]
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["asgi"]["spec_version"] >= "2.4"
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/mount/a b/é"
    assert scope["raw_path"] == b"/mount/a%20b/%C3%A9"
    assert scope["root_path"] == "/mount"
    assert scope["query_string"] == b"x=1&y=%20"
    assert scope["server"] == ("127.0.0.1", srv.port)
    assert scope["client"][0] == "127.0.0.1"
    assert (b"x-thing", b"V") in [tuple(h) for h in scope["headers"]]
    assert all(isinstance(n, bytes) and isinstance(v, bytes) for n, v in scope["headers"])
    assert "http.response.trailers" in scope["extensions"]


def test_bad_percent_encoding_is_400(serve: Any) -> None:
    """RFC 3986 2.1: a percent-encoded octet is "%" HEXDIG HEXDIG; a stray "%" is refused."""
    recorder = Recorder()
    srv = serve(recorder)
    sock = srv.connect()
    sock.sendall(b"GET /100%zz HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, _ = read_response(sock)
    assert status == 400
    assert recv_until_closed(sock) == b""
    assert recorder.scopes == []


def test_pipelining_in_order(serve: Any) -> None:
    recorder = Recorder()
    srv = serve(recorder)
    sock = srv.connect()
    sock.sendall(
        b"POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nA"
        b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    bodies = [read_response(sock)[2] for _ in range(3)]
    sock.close()
    assert bodies == [b"A", b"", b"abc"]
    assert [s["path"] for s in recorder.scopes] == ["/1", "/2", "/3"]


def test_head_has_no_body(serve: Any) -> None:
    srv = serve(hello)
    sock = srv.connect()
    sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b"Hello, world!"):
        data += sock.recv(65536)
    sock.close()
    # The HEAD response carries the GET's Content-Length but no body (RFC 9110 9.3.2).
    first, second = data.split(b"HTTP/1.1 200")[1:]
    assert b"content-length: 13" in first
    assert first.endswith(b"\r\n\r\n")
    assert second.endswith(b"Hello, world!")


def test_streaming_response_is_chunked(serve: Any) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(5):
            await send({"type": "http.response.body", "body": b"%d," % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    srv = serve(app)
    with httpx.Client() as client, client.stream("GET", srv.url) as response:
        assert response.headers["transfer-encoding"] == "chunked"
        assert b"".join(response.iter_bytes()) == b"0,1,2,3,4,"


def test_trailers(serve: Any) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send({"type": "http.response.body", "body": b"data"})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")]})

    srv = serve(app)
    sock = srv.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n")
    data = recv_until_closed(sock)
    assert data.endswith(b"4\r\ndata\r\n0\r\nx-checksum: abc\r\n\r\n")


def test_pathsend(serve: Any, tmp_path: Any) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(bytes(range(256)) * 1000)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"256000")],
            }
        )
        await send({"type": "http.response.pathsend", "path": str(path)})

    srv = serve(app)
    assert httpx.get(srv.url).content == path.read_bytes()


def test_expect_100_continue_only_when_the_app_reads(serve: Any) -> None:
    """RFC 9110 10.1.1: a server that answers without reading the body need not send 100."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/read":
            await receive()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]}
        )
        await send({"type": "http.response.body"})

    srv = serve(app)
    for path, expect_continue in ((b"/read", True), (b"/skip", False)):
        sock = srv.connect()
        sock.sendall(
            b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        status, _, _ = read_response(sock)
        if expect_continue:
            assert status == 100
            sock.sendall(b"abc")
            status, _, _ = read_response(sock)
        assert status == 200
        sock.close()


def test_request_body_back_pressure(serve: Any) -> None:
    """The socket is not read faster than the app consumes the body."""
    release = threading.Event()
    received: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while not release.is_set():
            await anyio.sleep(0.01)
        total = 0
        while True:
            message = await receive()
            total += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        received.append(total)
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]}
        )
        await send({"type": "http.response.body"})

    srv = serve(app)
    size = 256 * 1024 * 1024
    sock = srv.connect()
    try:
        _fill_and_release(sock, size, release, received)
    finally:
        release.set()


def _fill_and_release(
    sock: socket.socket, size: int, release: threading.Event, received: list[int]
) -> None:
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
    sock.setblocking(False)
    chunk = b"x" * 65536
    written = 0
    stalled = 0
    # Write until the kernel buffers are full: the server is not reading.
    while stalled < 50:
        try:
            written += sock.send(chunk)
            stalled = 0
        except BlockingIOError:
            stalled += 1
            time.sleep(0.01)
    assert written < size // 4, written
    release.set()
    sock.setblocking(True)
    remaining = size - written
    while remaining:
        remaining -= sock.send(chunk[: min(len(chunk), remaining)])
    status, _, _ = read_response(sock)
    assert status == 200
    assert received == [size]


def test_write_back_pressure(serve: Any) -> None:
    """A client that does not read never makes the server buffer a whole large response."""
    progress: list[int] = [0]
    total = 512 * 1024 * 1024

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(total).encode())],
            }
        )
        chunk = b"y" * 65536
        for _ in range(total // len(chunk)):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            progress[0] += len(chunk)
        await send({"type": "http.response.body"})

    srv = serve(app)
    sock = srv.connect()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    # Wait until the app's progress stops moving (its send() is blocked), bounded.
    last, still = -1, 0
    deadline = time.monotonic() + 20
    while still < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
        current = progress[0]
        still = still + 1 if current == last else 0
        last = current
    assert progress[0] < total // 8, progress[0]
    sock.close()


def test_http_disconnect_reaches_the_app(serve: Any) -> None:
    seen = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "http.request"
        assert (await receive())["type"] == "http.disconnect"
        seen.set()

    srv = serve(app)
    sock = srv.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.close()
    assert seen.wait(10)


def test_app_exception_before_response_is_500_and_logged_once(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise ValueError("boom")

    srv = serve(app)
    with caplog.at_level(logging.ERROR, logger="tether.error"):
        response = httpx.get(srv.url)
        response2 = httpx.get(srv.url)
    assert response.status_code == 500
    assert response2.status_code == 500
    records = [r for r in caplog.records if r.name == "tether.error"]
    assert len(records) == 2
    assert "connection" in records[0].getMessage()
    assert records[0].exc_info is not None


def test_app_exception_after_start_closes_the_connection(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/ok":
            await hello(scope, receive, send)
            return
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]}
        )
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("boom")

    srv = serve(app)
    sock = srv.connect()
    sock.sendall(b"GET /fail HTTP/1.1\r\nHost: x\r\n\r\n")
    with caplog.at_level(logging.ERROR, logger="tether.error"):
        data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200")
    assert data.endswith(b"partial")
    records = [r for r in caplog.records if r.name == "tether.error"]
    assert len(records) == 1
    assert "after the response started" in records[0].getMessage()
    # The server keeps serving.
    assert httpx.get(srv.url + "/ok").text == "Hello, world!"


def test_protocol_error_gets_status_hint(serve: Any) -> None:
    srv = serve(hello)
    sock = srv.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
    status, _headers, _ = read_response(sock)
    assert status == 400
    assert recv_until_closed(sock) == b""
    sock = srv.connect()
    sock.sendall(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")
    status, _, _ = read_response(sock)
    assert status == 505


def test_limit_concurrency_503_without_calling_the_app(serve: Any) -> None:
    release = threading.Event()
    called = threading.Event()
    calls: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        called.set()
        while not release.is_set():
            await anyio.sleep(0.01)
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]}
        )
        await send({"type": "http.response.body"})

    srv = serve(app, limit_concurrency=1)
    busy = srv.connect()
    busy.sendall(b"GET /busy HTTP/1.1\r\nHost: x\r\n\r\n")
    assert called.wait(10)
    response = httpx.get(srv.url + "/over")
    assert response.status_code == 503
    assert response.headers["retry-after"] in ("1", "2")  # --retry-after-window's default, 2
    # The shed connection closes, as tether-threaded's (tether.serving.overload_response).
    assert response.headers["connection"] == "close"
    over = srv.connect()
    over.sendall(b"GET /over HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(over)[0] == 503
    assert recv_until_closed(over) == b""
    assert calls == ["/busy"]
    release.set()
    assert read_response(busy)[0] == 200


def test_limit_connections_hysteresis(serve: Any) -> None:
    srv = serve(hello, limit_connections=2, limit_connections_low=1)
    first, second = srv.connect(), srv.connect()
    for sock in (first, second):
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[0] == 200
    third = srv.connect(timeout=0.5)
    third.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    # At the high mark the server does not accept: the request waits in the backlog.
    with pytest.raises(TimeoutError):
        third.recv(1)
    first.close()
    # One closed: 1 open is the low mark, so accepting resumes.
    third.settimeout(10)
    assert read_response(third)[0] == 200
    second.close()
    third.close()


def test_request_head_timeout_408(serve: Any) -> None:
    """RFC 9110 15.5.9: 408 when the server did not receive a complete request in time."""
    srv = serve(hello, timeout_request_head=0.5)
    sock = srv.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    status, _headers, _ = read_response(sock)
    assert status == 408
    assert recv_until_closed(sock) == b""


def test_keep_alive_idle_timeout_closes(serve: Any) -> None:
    srv = serve(hello, timeout_keep_alive=0.3)
    sock = srv.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(sock)[0] == 200
    assert recv_until_closed(sock) == b""


def test_body_stall_timeout_disconnects(serve: Any) -> None:
    seen: list[str] = []
    done = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            seen.append(message["type"])
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        done.set()

    srv = serve(app, timeout_body=0.3)
    sock = srv.connect()
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    assert done.wait(10)
    assert seen[-1] == "http.disconnect"
    # No response had started: the core's 408, then the close (RFC 9110 15.5.9).
    assert recv_until_closed(sock).startswith(b"HTTP/1.1 408 ")


def test_lifespan_state_reaches_requests(serve: Any) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    scope["state"]["db"] = "connected"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = scope["state"]["db"].encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    srv = serve(app, lifespan="on")
    assert httpx.get(srv.url).text == "connected"


def test_failed_startup_stops_the_server(backend: str) -> None:
    from tether_asyncio import Config, Server

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    server = Server(
        Config(app=app, port=0, backend=backend, lifespan="on", install_signal_handlers=False)
    )  # type: ignore[arg-type]
    assert server.run() == 3


def test_unix_socket(backend: str, tmp_path: Any) -> None:
    from tests.server_asyncio.conftest import running

    path = str(tmp_path / "tether.sock")
    recorder = Recorder()
    with running(recorder, backend, uds=path):
        transport = httpx.HTTPTransport(uds=path)
        with httpx.Client(transport=transport) as client:
            assert client.get("http://localhost/").status_code == 200
    assert recorder.scopes[0]["server"] == (path, None)
    assert recorder.scopes[0]["client"] is None


def test_ipv6(backend: str, caplog: pytest.LogCaptureFixture) -> None:
    """Served on ::1; the access log brackets the address (``[::1]:port``), as tether-threaded
    does, so that the port cannot be read as part of it."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("::1 is not available")
    from tests.server_asyncio.conftest import running

    caplog.set_level(logging.INFO, logger="tether.access")
    recorder = Recorder()
    with running(recorder, backend, host="::1") as srv:
        assert httpx.get(f"http://[::1]:{srv.port}/").status_code == 200
    client = recorder.scopes[0]["client"]
    assert client[0] == "::1"
    lines = [r.getMessage() for r in caplog.records if r.name == "tether.access"]
    assert any(line.startswith(f'[::1]:{client[1]} - "GET / ') for line in lines), lines


def test_fd(backend: str) -> None:
    from tests.server_asyncio.conftest import running

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    with running(hello, backend, fd=sock.detach()):
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "Hello, world!"


def test_413_reaches_a_client_still_sending(serve: Any) -> None:
    """The error response survives unread request bytes (half-close and drain, no RST)."""
    recorder = Recorder()
    srv = serve(recorder, max_body_size=1000)
    sock = srv.connect()
    body = b"z" * 200_000
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
    # The server may stop reading; the response must still arrive.
    with contextlib.suppress(OSError):
        sock.sendall(body)
    status, _, _ = read_response(sock)
    assert status == 413
