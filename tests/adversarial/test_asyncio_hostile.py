"""Hostile clients against ``tether serve`` in a real subprocess (issue 12).

Each test stages one attack and checks the server shrugs it off: it keeps serving, closes the
attacker within a bound that the options set, frees what the attacker held, and keeps its
memory. The bounds are generous (seconds): they catch "never", not slowness.
"""

from __future__ import annotations

import contextlib
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
    ServerProcess,
    closed_within,
    get,
    have,
    make_certificate,
    masked_frame,
    non_reading_socket,
    tether_serve,
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


@pytest.fixture(params=BACKENDS)
def tls_server(
    request: pytest.FixtureRequest, tmp_path: Path, certificate: tuple[Path, Path]
) -> Iterator[ServerProcess]:
    cert, key = certificate
    options = ["--backend", str(request.param), "--ssl-certfile", str(cert)]
    options += ["--ssl-keyfile", str(key), "--timeout-tls-handshake", "0.5"]
    with tether_serve(tmp_path, *options) as server:
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
