"""An adversarial audit of ``tether serve`` (asyncio and trio, plain TCP and TLS), over real
sockets against a real server subprocess.

Each test stages what a hostile or clumsy client does and checks the outcome a client and an
operator can see: the response it is owed (or the status for its mistake), every other client
still served, and no traceback in the server's log. Attacks already staged elsewhere
(tests/adversarial/test_asyncio_hostile.py, tests/server_asyncio/) are not repeated here.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adversarial._servers import (
    ServerProcess,
    closed_within,
    get,
    have,
    make_certificate,
    tether_serve,
)

BACKENDS = ("asyncio", "trio")

pytestmark = pytest.mark.timeout(60)


def _no_traceback(server: ServerProcess, *, tls: bool = False) -> None:
    """The server is up, answers, and logged nothing a client could have caused."""
    assert (_tls_get(server) if tls else get(server.port)) == (200, b"ok")
    assert server.alive()
    output = server.output()
    assert "Traceback" not in output, output
    assert "ERROR" not in output, output


# -- TLS: a client's end of the stream while the server still has to write ----------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if not have("openssl"):
        pytest.skip("openssl is not installed")
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(params=BACKENDS)
def tls_server(
    request: pytest.FixtureRequest, tmp_path: Path, certificate: tuple[Path, Path]
) -> Iterator[ServerProcess]:
    """``tether serve`` over TLS on each backend."""
    cert, key = certificate
    options = ["--backend", str(request.param), "--ssl-certfile", str(cert)]
    with tether_serve(tmp_path, *options, "--ssl-keyfile", str(key)) as server:
        yield server


def _tls_client(server: ServerProcess) -> ssl.SSLSocket:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context.wrap_socket(server.connect(), server_hostname="127.0.0.1")


def _tls_get(server: ServerProcess) -> tuple[int, bytes]:
    """``get`` over TLS: one ``GET /`` with ``Connection: close``, its status and body."""
    with _tls_client(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_tls_tcp_half_close_mid_body_is_not_an_application_error(
    tls_server: ServerProcess,
) -> None:
    """A TLS client whose TCP FIN (no close_notify) comes in the middle of a body: the server's
    SSL object then refuses to write, and anyio's TLS stream says so with ``EndOfStream`` from
    ``send``. That is the client gone, not an exception for the application (which was logged
    with a traceback, "exception in ASGI application; answering 500")."""
    sock = _tls_client(tls_server)
    sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
    # SSLSocket.shutdown() drops the TLS layer and half-closes the TCP socket: a FIN without a
    # close_notify, as a client that crashes or a middlebox sends.
    sock.shutdown(socket.SHUT_WR)
    assert closed_within(sock, 10)
    sock.close()
    _no_traceback(tls_server, tls=True)
