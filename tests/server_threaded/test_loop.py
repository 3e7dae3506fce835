"""The loop: back-pressure both ways, overload, limits, timeouts, shutdown, transports."""

from __future__ import annotations

import os
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from threaded_helpers import connect, read_until_closed, refuses_connections, running, wait_for

from tether_threaded import Config, ConfigError, Server
from tether_threaded._connection import Connection
from tether_threaded._transport import OUT_HIGH

Environ = dict[str, Any]
CHUNK = 64 * 1024


def _connections(server: Server) -> list[Connection]:
    loop = server._loop
    assert loop is not None
    return list(loop.conns)


def _stable(read: Any, polls: int = 5) -> Any:
    """Poll ``read()`` until it returns the same value ``polls`` times in a row (bounded)."""
    last = read()
    same = 0

    def settled() -> bool:
        nonlocal last, same
        value = read()
        same = same + 1 if value == last else 0
        last = value
        return same >= polls

    assert wait_for(settled, timeout=20)
    return last


def test_slow_reader_holds_back_the_application() -> None:
    """A client that does not read: the app's generator blocks, the server holds little."""
    total = 64 * 1024 * 1024
    produced = [0]

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        block = b"x" * CHUNK
        while produced[0] < total:
            produced[0] += CHUNK
            yield block

    with running(app) as server:
        sock = connect(server)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        stalled_at = _stable(lambda: produced[0])
        assert stalled_at < total
        # What the server holds: its queue stays under the high-water mark (+ one piece).
        (conn,) = _connections(server)
        assert len(conn.outbuf) <= OUT_HIGH + CHUNK + 64
        received = len(read_until_closed(sock, limit=2 * total))
    assert produced[0] == total
    assert received > total  # the body plus chunk framing


def test_upload_is_gathered_before_the_app_runs_and_spooled_past_the_threshold() -> None:
    """The loop reads the whole body before a worker runs the app (no thread waits on the
    client); beyond tether_server.wsgi_body.SPOOL_AT bytes it sits in a temporary file, not in
    memory. The app gets it complete, with CONTENT_LENGTH."""
    total = 8 * 1024 * 1024
    entered = threading.Event()

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        entered.set()
        stream = environ["wsgi.input"]
        got = 0
        while block := stream.read(CHUNK):
            got += len(block)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d %s" % (got, environ["CONTENT_LENGTH"].encode())]

    with running(app) as server:
        sock = connect(server)
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % total
        )
        sock.sendall(b"y" * (total - 1))
        (conn,) = _connections(server)
        assert wait_for(lambda: conn.body is not None and conn.body.size == total - 1)
        body = conn.body
        assert body is not None
        assert body.file is not None
        assert not body.chunks
        assert not entered.is_set()
        sock.sendall(b"y")
        raw = read_until_closed(sock)
    assert raw.endswith(b"%d %d" % (total, total))


def test_overload_answers_503_with_retry_after_without_calling_the_app() -> None:
    entered = threading.Event()
    release = threading.Event()
    calls: list[str] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        calls.append(environ["PATH_INFO"])
        if environ["PATH_INFO"] == "/block":
            entered.set()
            assert release.wait(30)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    with running(app, threads=1, limit_concurrency=1) as server:
        results: list[httpx.Response] = []
        blocked = threading.Thread(
            target=lambda: results.append(httpx.get(server.url() + "/block"))
        )
        blocked.start()
        assert entered.wait(10)
        refused = httpx.get(server.url() + "/other")
        release.set()
        blocked.join(10)
        after = httpx.get(server.url() + "/after")
    assert refused.status_code == 503
    assert refused.headers["retry-after"].isdigit()
    assert refused.headers["connection"] == "close"
    assert results[0].status_code == 200
    assert after.status_code == 200
    assert calls == ["/block", "/after"]


def test_head_too_large_is_431() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return []

    with running(app, max_head_size=1024) as server:
        sock = connect(server)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4000 + b"\r\n\r\n")
        raw = read_until_closed(sock)
    assert raw.startswith(b"HTTP/1.1 431 ")


def test_body_over_the_limit_is_413() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        environ["wsgi.input"].read(-1)
        start_response("200 OK", [])
        return []

    with running(app, max_body_size=1000) as server:
        r = httpx.post(server.url(), content=b"z" * 5000)
    assert r.status_code == 413


def test_head_timeout_answers_408_and_closes() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return []

    with running(app, timeout_request_head=0.3) as server:
        sock = connect(server)
        sock.sendall(b"GET / HTTP/1.1\r\nHost:")
        raw = read_until_closed(sock)
    assert raw.startswith(b"HTTP/1.1 408 ")


def test_idle_keep_alive_connection_is_closed() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hi"]

    with running(app, timeout_keep_alive=0.2) as server:
        sock = connect(server)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = read_until_closed(sock)
    assert raw.startswith(b"HTTP/1.1 200 OK") and raw.endswith(b"hi")


def test_graceful_shutdown_finishes_requests_in_flight() -> None:
    entered = threading.Event()
    release = threading.Event()

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        entered.set()
        assert release.wait(30)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"finished"]

    server = Server(app, Config(port=0, threads=2, install_signal_handlers=False))
    server.start()
    host, port = server.address[:2]
    idle = socket.create_connection((host, port), timeout=10)
    results: list[httpx.Response] = []
    busy = threading.Thread(target=lambda: results.append(httpx.get(server.url(), timeout=30)))
    busy.start()
    assert entered.wait(10)
    assert wait_for(lambda: len(_connections(server)) == 2)
    server.shutdown(wait=False)

    assert wait_for(lambda: refuses_connections(host, port))
    assert read_until_closed(idle) == b""  # the idle connection was closed at once
    release.set()
    busy.join(10)
    server.shutdown(timeout=10)
    assert results[0].status_code == 200
    assert results[0].text == "finished"
    assert results[0].headers["connection"] == "close"


def _hello(environ: Environ, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["wsgi.url_scheme"].encode() + b" " + environ["PATH_INFO"].encode()]


def test_tls(certificate: tuple[Path, Path], tmp_path: Path) -> None:
    cert, key = certificate
    blob = os.urandom(1024 * 1024)
    (tmp_path / "f").write_bytes(blob)

    def app(environ: Environ, start_response: Any) -> Any:
        if environ["PATH_INFO"] == "/file":
            start_response("200 OK", [("Content-Type", "application/octet-stream")])
            return environ["wsgi.file_wrapper"]((tmp_path / "f").open("rb"))
        if environ["REQUEST_METHOD"] == "POST":
            data = environ["wsgi.input"].read(-1)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"%d" % len(data)]
        return _hello(environ, start_response)

    context = ssl.create_default_context(cafile=str(cert))
    with (
        running(app, ssl_certfile=str(cert), ssl_keyfile=str(key)) as server,
        httpx.Client(verify=context, base_url=server.url()) as client,
    ):
        assert server.url().startswith("https://")
        assert client.get("/x").text == "https /x"
        assert client.post("/", content=b"p" * 3_000_000).text == "3000000"
        assert client.get("/file").content == blob
        # A client that is not speaking TLS does not hurt the server: it is told, in plain HTTP.
        sock = connect(server)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_until_closed(sock).startswith(b"HTTP/1.1 400 ")
        assert client.get("/again").text == "https /again"


def test_missing_certificate_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        Server(_hello, Config(port=0, ssl_certfile=str(tmp_path / "none.pem"))).bind()


def test_ipv6() -> None:
    try:
        socket.socket(socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6")
    with running(_hello, host="::1") as server:
        assert server.url().startswith("http://[::1]:")
        r = httpx.get(server.url() + "/v6")
    assert r.text == "http /v6"


def test_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    with running(_hello, uds=path) as server:
        transport = httpx.HTTPTransport(uds=path)
        with httpx.Client(transport=transport) as client:
            r = client.get("http://localhost/unix")
        assert r.text == "http /unix"
        assert server.address == path
    assert not os.path.exists(path)


def test_inherited_file_descriptor() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    with running(_hello, fd=listener.fileno()):
        r = httpx.get(f"http://127.0.0.1:{port}/fd")
    assert r.text == "http /fd"


def test_connection_limit_pauses_accepting() -> None:
    with running(_hello, limit_connections=2) as server:
        loop = server._loop
        assert loop is not None
        first, second = connect(server), connect(server)
        assert wait_for(lambda: len(loop.conns) == 2 and not loop._listening)
        third = connect(server)  # completes in the kernel backlog, not yet accepted
        third.sendall(b"GET /third HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        first.close()
        raw = read_until_closed(third)
        second.close()
    assert raw.endswith(b"http /third")


def test_blocking_application_gets_every_worker() -> None:
    """Four requests that can only finish together: the pool must wake all four workers
    (it wakes more only when the awake ones are stuck in a job)."""
    barrier = threading.Barrier(4, timeout=20)

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        barrier.wait()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"together"]

    with running(app, threads=4) as server:
        results: list[httpx.Response] = []
        clients = [
            threading.Thread(target=lambda: results.append(httpx.get(server.url(), timeout=30)))
            for _ in range(4)
        ]
        for client in clients:
            client.start()
        for client in clients:
            client.join(30)
    assert [r.text for r in results] == ["together"] * 4
