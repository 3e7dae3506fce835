"""Helpers for the threaded server tests: a real server on 127.0.0.1 in a background thread."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tether_threaded import Config, Server


@contextlib.contextmanager
def running(app: Any, **options: Any) -> Iterator[Server]:
    """Serve ``app`` on a free port for the duration of the block."""
    options.setdefault("port", 0)
    options.setdefault("threads", 4)
    options.setdefault("access_log", False)
    options.setdefault("install_signal_handlers", False)
    server = Server(app, Config(**options))
    server.start()
    try:
        yield server
    finally:
        server.shutdown(timeout=10)


@pytest.fixture
def serve() -> Callable[..., contextlib.AbstractContextManager[Server]]:
    """``with serve(app, **config) as server: ...``"""
    return running


def connect(server: Server) -> socket.socket:
    """A raw client socket to ``server`` (timeouts bound every test)."""
    host, port = server.address[:2]
    sock = socket.create_connection((host, port), timeout=10)
    return sock


def read_until_closed(sock: socket.socket, limit: int = 10_000_000) -> bytes:
    """Everything the server sends until it closes the connection; closes our socket too."""
    chunks = []
    total = 0
    with sock:
        while total < limit:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
            total += len(data)
    return b"".join(chunks)


def read_head(sock: socket.socket) -> bytes:
    """Read up to the end of a response head (the socket's timeout bounds the wait)."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return data


def refuses_connections(host: str, port: int) -> bool:
    """Whether a new connection to ``host:port`` is refused (a drain has closed the socket)."""
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return True
    return False


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes (bounded, not a sleep-sync)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost (needs the openssl command)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
