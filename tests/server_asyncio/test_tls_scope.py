"""The ASGI TLS extension on https and wss scopes, with a client certificate
(``--ssl-cert-reqs 2``), over real TLS connections."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.server_asyncio.conftest import read_response, running

pytestmark = pytest.mark.timeout(60)


def _certificate(directory: Path, name: str, subject: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", subject, "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    directory = tmp_path_factory.mktemp("tls")
    return {
        "server": _certificate(directory, "server", "/CN=127.0.0.1"),
        "client": _certificate(directory, "client", "/CN=client/O=Tether Tests"),
    }


def _der(pem: str) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem)


def test_tls_extension_with_a_client_certificate(
    backend: str, certificates: dict[str, tuple[Path, Path]]
) -> None:
    server_cert, server_key = certificates["server"]
    client_cert, client_key = certificates["client"]
    extensions: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        extensions.append(scope["extensions"])
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close"})
            return
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(client_cert, client_key)
    options = {
        "ssl_certfile": str(server_cert),
        "ssl_keyfile": str(server_key),
        "ssl_cert_reqs": int(ssl.CERT_REQUIRED),
        "ssl_ca_certs": str(client_cert),  # self-signed: the client's certificate is its CA
    }
    with running(app, backend, **options) as srv:
        raw = socket.create_connection((srv.host, srv.port), timeout=10)
        with context.wrap_socket(raw) as sock:
            cipher_name, _, _ = sock.cipher()  # type: ignore[misc]
            version = sock.version()
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock)[0] == 204
        with connect(f"wss://{srv.address}/ws", ssl=context, open_timeout=10):
            pass

    ids = {c["name"]: c["id"] & 0xFFFF for c in ssl.create_default_context().get_ciphers()}
    http_tls = extensions[0]["tls"]
    assert extensions[1]["tls"].keys() == http_tls.keys()  # the wss scope has it too
    for tls in (http_tls, extensions[1]["tls"]):
        assert _der(tls["server_cert"]) == _der(server_cert.read_text())
        assert [_der(pem) for pem in tls["client_cert_chain"]] == [_der(client_cert.read_text())]
        assert tls["client_cert_name"] == "O=Tether Tests,CN=client"
        assert tls["client_cert_error"] is None
        assert tls["tls_version"] == {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}[str(version)]
    assert http_tls["cipher_suite"] == ids[cipher_name]
    assert "websocket.http.response" in extensions[1]


def test_tls_extension_without_a_client_certificate(
    backend: str, certificates: dict[str, tuple[Path, Path]]
) -> None:
    server_cert, server_key = certificates["server"]
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["extensions"]["tls"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with running(app, backend, ssl_certfile=str(server_cert), ssl_keyfile=str(server_key)) as srv:
        raw = socket.create_connection((srv.host, srv.port), timeout=10)
        with context.wrap_socket(raw) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock)[0] == 204
    assert seen[0]["client_cert_chain"] == []
    assert seen[0]["client_cert_name"] is None
    assert _der(seen[0]["server_cert"]) == _der(server_cert.read_text())
    assert isinstance(seen[0]["cipher_suite"], int)


def test_receive_before_accept_over_wss(
    backend: str, certificates: dict[str, tuple[Path, Path]]
) -> None:
    """Quart's shape over TLS: the wait before accepting stops cleanly, no TLS record is lost."""
    import anyio

    server_cert, server_key = certificates["server"]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        waiting = anyio.Event()

        async def echo() -> None:
            waiting.set()
            while (message := await receive())["type"] != "websocket.disconnect":
                await send({"type": "websocket.send", "text": message["text"] * 2})

        async with anyio.create_task_group() as group:
            group.start_soon(echo)
            await waiting.wait()
            await send({"type": "websocket.accept"})

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with running(app, backend, ssl_certfile=str(server_cert), ssl_keyfile=str(server_key)) as srv:
        with connect(f"wss://{srv.address}/", ssl=context, open_timeout=10) as ws:
            for text in ("a", "bc", "x" * 70_000):
                ws.send(text)
                assert ws.recv(timeout=10) == text * 2
        assert ws.close_code == 1000
