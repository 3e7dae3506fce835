"""Hostile clients against ``tether serve`` in a real subprocess (issue 12); the TLS attacks
run against ``tether-threaded`` too.

Each test stages one attack and checks the server shrugs it off: it keeps serving, closes the
attacker within a bound that the options set, frees what the attacker held, and keeps its
memory. The bounds are generous (seconds): they catch "never", not slowness.
"""

from __future__ import annotations

import contextlib
import select
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.adversarial._servers import (
    FastReader,
    ServerProcess,
    any_server,
    closed_within,
    get,
    have,
    make_certificate,
    masked_frame,
    non_reading_socket,
    tether_serve,
    tether_threaded,
    wait_for_ok,
    websocket_upgrade,
)

BACKENDS = ("asyncio", "trio")

pytestmark = pytest.mark.timeout(60)


# -- TLS handshakes that never finish ------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if not have("openssl"):
        pytest.skip("openssl is not installed")
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(params=[*BACKENDS, "threaded"])
def tls_server(
    request: pytest.FixtureRequest, tmp_path: Path, certificate: tuple[Path, Path]
) -> Iterator[ServerProcess]:
    """A TLS server: tether serve on each backend, and tether-threaded (same attacks)."""
    cert, key = certificate
    options = ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
    options += ["--timeout-tls-handshake", "0.5"]
    with any_server(str(request.param), tmp_path, *options) as server:
        yield server


def _https_ok(server: ServerProcess) -> None:
    response = httpx.get(f"https://127.0.0.1:{server.port}/", verify=False, timeout=5)
    assert response.status_code == 200
    assert response.text == "ok"


def test_tls_connect_and_close_does_not_stop_server(tls_server: ServerProcess) -> None:
    # What load-balancer health checks and port scanners do: connect, close.
    for _ in range(20):
        tls_server.connect().close()
    with tls_server.connect() as sock:  # and with a reset instead of a FIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    _https_ok(tls_server)
    assert tls_server.alive()
    assert "Traceback" not in tls_server.output()


def test_tls_partial_client_hello_then_close_does_not_stop_server(
    tls_server: ServerProcess,
) -> None:
    for size in (1, 3, 5, 40):
        with tls_server.connect() as sock:
            sock.sendall(_client_hello()[:size])
    _https_ok(tls_server)
    assert tls_server.alive()
    assert "Traceback" not in tls_server.output()


def test_tls_partial_client_hello_is_closed_by_handshake_timeout(
    tls_server: ServerProcess,
) -> None:
    with tls_server.connect() as sock:
        sock.sendall(_client_hello()[:3])
        assert closed_within(sock, 5)  # --timeout-tls-handshake 0.5
    _https_ok(tls_server)


def test_tls_port_given_plain_http_or_garbage_keeps_serving(tls_server: ServerProcess) -> None:
    for data in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\xff\xff" + b"\0" * 64):
        with tls_server.connect() as sock:
            sock.sendall(data)
            assert closed_within(sock, 5)
    _https_ok(tls_server)
    assert tls_server.alive()
    assert "Traceback" not in tls_server.output()


@pytest.mark.skipif(not have("wrk"), reason="wrk is not installed")
def test_tls_wrk_load_does_not_stop_server(tls_server: ServerProcess) -> None:
    # wrk opens and drops connections at the end of its run, some mid-handshake.
    subprocess.run(
        ["wrk", "-t1", "-c20", "-d1s", f"https://127.0.0.1:{tls_server.port}/"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    _https_ok(tls_server)
    assert tls_server.alive()


def _client_hello() -> bytes:
    """The first bytes a real TLS client sends (its ClientHello)."""
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


# -- connections reset before their first byte ----------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_connect_and_reset_does_not_stop_server(backend: str, tmp_path: Path) -> None:
    with tether_serve(tmp_path, "--backend", backend) as server:
        for _ in range(20):
            with server.connect() as sock:  # RST instead of FIN: the peer name may be gone
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        assert get(server.port) == (200, b"ok")
        assert server.alive()
        assert "Traceback" not in server.output()


# -- clients that stop reading --------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_reading_client_of_streamed_response_is_closed_by_write_timeout(
    backend: str, tmp_path: Path
) -> None:
    options = ["--backend", backend, "--limit-concurrency", "1", "--timeout-write", "1"]
    with tether_serve(tmp_path, *options) as server:
        sock = non_reading_socket(server.port)
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        # It holds the only --limit-concurrency slot until the write timeout frees it.
        wait_for_ok(server.port, within=10)
        assert closed_within(sock, 5)
        sock.close()
        assert server.alive()
        assert "Traceback" not in server.output()


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_reading_websocket_client_is_closed_by_write_timeout(
    backend: str, tmp_path: Path
) -> None:
    options = ["--backend", backend, "--limit-concurrency", "1", "--timeout-write", "1"]
    with tether_serve(tmp_path, *options) as server:
        sock = non_reading_socket(server.port)
        websocket_upgrade(sock, "/flood")  # the app sends 64 KiB messages without end
        wait_for_ok(server.port, within=10)
        assert closed_within(sock, 5)
        sock.close()
        assert "Traceback" not in server.output()


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_reading_websocket_client_is_closed_by_ping_timeout_despite_blocked_write(
    backend: str, tmp_path: Path
) -> None:
    # The write timeout is long: the ping, pong and close timers must end it on their own,
    # though the app is stuck in a send to a client that does not read.
    options = ["--backend", backend, "--limit-concurrency", "1", "--timeout-write", "60"]
    options += ["--ws-ping-interval", "0.5", "--ws-ping-timeout", "0.5"]
    options += ["--ws-close-timeout", "0.5"]
    with tether_serve(tmp_path, *options) as server:
        sock = non_reading_socket(server.port)
        websocket_upgrade(sock, "/flood")
        wait_for_ok(server.port, within=15)
        assert closed_within(sock, 5)
        sock.close()
        assert "Traceback" not in server.output()


@pytest.mark.parametrize("backend", BACKENDS)
def test_ping_flood_from_non_reader_is_throttled_and_closed(backend: str, tmp_path: Path) -> None:
    options = ["--backend", backend, "--timeout-write", "2", "--ws-ping-interval", "0"]
    with tether_serve(tmp_path, *options) as server:
        sock = non_reading_socket(server.port)
        websocket_upgrade(sock, "/echo")
        before = peak = server.rss_kb()
        pings = masked_frame(0x9, b"p" * 125) * 100
        sock.settimeout(0.2)
        end = time.monotonic() + 3
        sent = 0
        while time.monotonic() < end:
            try:
                sock.sendall(pings)
                sent += len(pings)
            except TimeoutError:
                pass  # the server stopped reading us: what it should do
            except OSError:
                break  # closed by the write timeout
            peak = max(peak, server.rss_kb())
        assert peak - before < 20 * 1024, f"RSS grew {peak - before} KiB under {sent} bytes"
        assert closed_within(sock, 10)
        sock.close()
        wait_for_ok(server.port, within=5)


# -- many slow clients at once --------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_slow_bodies_idle_websockets_and_slow_heads_do_not_stop_service(
    backend: str, tmp_path: Path
) -> None:
    with tether_serve(tmp_path, "--backend", backend) as server:
        bodies = [server.connect() for _ in range(50)]
        for sock in bodies:
            sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        websockets = [server.connect() for _ in range(20)]
        for sock in websockets:
            websocket_upgrade(sock, "/echo")
        heads = [server.connect() for _ in range(50)]
        for sock in heads:
            sock.sendall(b"GET / HTTP/1.1\r\n")
        stop = threading.Event()

        def trickle() -> None:
            while not stop.wait(0.5):  # one byte each every half second
                for sock in bodies:
                    sock.send(b"x")
                for sock in heads:
                    sock.send(b"X")

        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        try:
            for _ in range(5):
                start = time.monotonic()
                status, body = get(server.port, timeout=5)
                assert (status, body) == (200, b"ok")
                assert time.monotonic() - start < 1.0
        finally:
            stop.set()
            thread.join(5)
            for sock in bodies + websockets + heads:
                sock.close()


# -- a fast client of an endless response ---------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_fast_client_of_endless_stream_does_not_starve_other_connections(
    backend: str, tmp_path: Path
) -> None:
    with tether_serve(tmp_path, "--backend", backend) as server:
        sock = server.connect()
        sock.sendall(b"GET /stream?forever-small HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = FastReader(sock)
        try:
            assert reader.started.wait(5)
            for _ in range(3):
                assert get(server.port, timeout=5) == (200, b"ok")
        finally:
            reader.stop()


@pytest.mark.parametrize("backend", BACKENDS)
def test_graceful_shutdown_timeout_ends_endless_stream_to_fast_client(
    backend: str, tmp_path: Path
) -> None:
    with tether_serve(tmp_path, "--backend", backend, "--timeout-graceful-shutdown", "1") as server:
        sock = server.connect()
        sock.sendall(b"GET /stream?forever-small HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = FastReader(sock)
        try:
            assert reader.started.wait(5)
            server.proc.send_signal(signal.SIGINT)
            server.proc.wait(10)  # TimeoutExpired if the stream kept the loop to itself
        finally:
            reader.stop()


# -- a body sent too slowly --------------------------------------------------------------------


def _body_server(tmp_path: Path, server: str, *options: str):  # type: ignore[no-untyped-def]
    if server == "threaded":
        return tether_threaded(tmp_path, *options)
    return tether_serve(tmp_path, "--backend", server, *options)


@pytest.mark.parametrize("server", [*BACKENDS, "threaded"])
def test_stalled_body_gets_408_at_the_body_timeout(tmp_path: Path, server: str) -> None:
    with _body_server(tmp_path, server, "--timeout-body", "1") as srv, srv.connect(8) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nsome")
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(4096):
                answer += chunk
        # No response had started: the core's 408, then the close (RFC 9110 15.5.9).
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert srv.alive()


@pytest.mark.parametrize("server", [*BACKENDS, "threaded"])
def test_body_trickled_below_the_minimum_rate_is_closed(tmp_path: Path, server: str) -> None:
    """A byte every 0.2 s never stalls for --timeout-body, but is far below 1000 B/s: cut
    about --timeout-body seconds after the body began (the core's rate deadline)."""
    options = ("--timeout-body", "1", "--min-body-rate", "1000")
    with _body_server(tmp_path, server, *options) as srv, srv.connect(8) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        end = time.monotonic() + 5
        while time.monotonic() < end:
            try:
                sock.sendall(b"x")
            except OSError:
                return  # cut
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                return  # answered (408) or closed: either is readable
        pytest.fail("a body far below --min-body-rate was not cut")
