"""TLS clients and process control, as a hostile client and a hurried operator meet them.

Real server processes (``tests.processes``): what a client or an operator sees is checked, not
how the server gets there. Found by the TLS and process-control audit; the TLS basics (half a
ClientHello, plain HTTP on the TLS port) are test_asyncio_hostile's, the signal basics
test_signals's.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adversarial._servers import (
    ServerProcess,
    any_server,
    have,
    make_certificate,
)
from tests.processes import RUNNING, STOPPED, LogLines, free_port, gone, reaped, spawn, wait_until

pytestmark = pytest.mark.timeout(60)

#: A WSGI app whose request waits for the file ``release`` to exist, then takes one second
#: more (the app's own work, not the test's synchronisation) and says "app returned".
STUCK_WSGI_APP = """
import os, time

def app(environ, start_response):
    print("in app", flush=True)
    while not os.path.exists("release"):
        time.sleep(0.01)
    time.sleep(1.0)
    print("app returned", flush=True)
    start_response("200 OK", [("Content-Length", "4")])
    return [b"done"]
"""


def _spawn_stuck(tmp_path: Path, app: str, *command: str) -> tuple[subprocess.Popen[str], int]:
    """``python -m COMMAND... stuck:app --port P`` with ``app`` written to ``stuck.py``, a
    0.5 s grace and no access log: the process and its port."""
    (tmp_path / "stuck.py").write_text(app)
    port = free_port()
    proc = spawn(
        command[0], tmp_path, *command[1:], "stuck:app", "--port", str(port),
        "--timeout-graceful-shutdown", "0.5", "--no-access-log",
    )  # fmt: skip
    return proc, port


def _send_request(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    return sock


# -- tether-threaded: the graceful shutdown's bound ------------------------------------------------


@pytest.mark.parametrize("signals", [1, 2], ids=["grace-runs-out", "second-signal"])
def test_threaded_stop_does_not_wait_for_a_stuck_app_past_the_grace(
    tmp_path: Path, signals: int
) -> None:
    # The threads still in the app were given 2 s more after --timeout-graceful-shutdown ran
    # out, and after a second signal ("forcing exit"), so every stop with a stuck request
    # overran the stop timeout an operator derives from the grace. The app here is let go
    # once the server has given up on it and returns a second later: the server must have
    # exited without waiting for it.
    proc, port = _spawn_stuck(tmp_path, STUCK_WSGI_APP, "tether_threaded")
    with reaped(proc):
        log, out = LogLines(proc), LogLines(proc, stdout=True)
        log.wait_for(RUNNING)
        with _send_request(port):
            out.wait_for("in app")
            proc.send_signal(signal.SIGINT)
            if signals == 2:
                # As soon as the first is seen: the handler may still be logging, and a
                # second signal runs inside it (Python handlers run between bytecodes). It
                # used to count itself only at its end, so this one was taken for a first.
                log.wait_for("SIGINT received: shutting down")
                proc.send_signal(signal.SIGINT)
                log.wait_for("second signal: forcing exit")
            else:
                log.wait_for("graceful shutdown timed out")
            (tmp_path / "release").touch()
            assert proc.wait(20) == 0
        assert STOPPED in log.finish()
        assert log.count("received: shutting down") == 1
        assert "app returned" not in out.finish()


# -- --workers: a worker whose app blocks its loop ---------------------------------------------

#: An ASGI app that blocks its event loop (a synchronous call in an async app): the worker
#: cannot act on any signal while it runs. It says which process it blocks.
BLOCKING_ASGI_APP = """
import os, time

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    print("in app", os.getpid(), flush=True)
    time.sleep(600)
"""


def _blocked_worker(tmp_path: Path) -> tuple[subprocess.Popen[str], LogLines, int, socket.socket]:
    """``tether serve --workers 2`` with one worker blocked in the app: the supervisor, its
    log, the blocked worker's pid, and the connection of the request that blocks it."""
    proc, port = _spawn_stuck(
        tmp_path, BLOCKING_ASGI_APP, "tether_asyncio", "serve", "--workers", "2"
    )
    log, out = LogLines(proc), LogLines(proc, stdout=True)
    log.wait_for(RUNNING, count=2)
    sock = _send_request(port)
    out.wait_for("in app")
    pid = int(out.text.split("in app", 1)[1].split()[0])
    return proc, log, pid, sock


def test_a_stop_kills_a_worker_stuck_past_the_grace(tmp_path: Path) -> None:
    # The supervisor waited for every worker for ever: one whose loop an app blocked never
    # acted on the SIGTERM passed on, so the stop never ended (gunicorn's arbiter kills a
    # worker still there after its graceful timeout).
    proc, log, pid, sock = _blocked_worker(tmp_path)
    with reaped(proc), sock:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            assert "killing it" in log.finish()
            assert wait_until(lambda: gone(pid), 10)
        finally:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_worker_stuck_when_its_supervisor_is_killed_does_not_linger(tmp_path: Path) -> None:
    # Workers stop when the supervisor goes (the pipe's EOF: SIGTERM to themselves), but one
    # whose loop is blocked could not act on it and lived on as an orphan, holding the port,
    # until the app returned.
    proc, _, pid, sock = _blocked_worker(tmp_path)
    with reaped(proc), sock:
        try:
            proc.kill()
            proc.wait(10)
            assert wait_until(lambda: gone(pid), 30), "the blocked worker outlived its supervisor"
        finally:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_reload_restarts_a_worker_stuck_in_the_app(tmp_path: Path) -> None:
    # --reload stopped its worker with SIGTERM and started the new one once it had exited:
    # a worker blocked in the app never exited, so no change (nor SIGHUP) was ever served.
    proc, port = _spawn_stuck(tmp_path, BLOCKING_ASGI_APP, "tether_asyncio", "serve", "--reload")
    with reaped(proc):
        log, out = LogLines(proc), LogLines(proc, stdout=True)
        log.wait_for(RUNNING)
        with _send_request(port):
            out.wait_for("in app")
            pid = int(out.text.split("in app", 1)[1].split()[0])
            try:
                proc.send_signal(signal.SIGHUP)
                log.wait_for(RUNNING, count=2, timeout=30)
                assert "killing it" in log.text
            finally:
                if not gone(pid):
                    os.kill(pid, signal.SIGKILL)


# -- TLS: a handshake that fails says why -----------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if not have("openssl"):
        pytest.skip("openssl is not installed")
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(params=["asyncio", "trio", "threaded"])
def mtls_server(
    request: pytest.FixtureRequest, tmp_path: Path, certificate: tuple[Path, Path]
) -> Iterator[ServerProcess]:
    """A server that requires a client certificate (--ssl-cert-reqs 2)."""
    cert, key = certificate
    options = ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
    options += ["--ssl-ca-certs", str(cert), "--ssl-cert-reqs", "2"]
    with any_server(str(request.param), tmp_path, *options) as server:
        yield server


def _client_context(version: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = context.maximum_version = version
    return context


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_a_client_without_the_required_certificate_gets_the_alert(
    mtls_server: ServerProcess, version: ssl.TLSVersion
) -> None:
    # tether serve closed the connection without the alert OpenSSL wrote (anyio drops it),
    # and tether-threaded closed with the client's bytes unread, which resets the connection
    # and destroys the alert: the client saw "unexpected EOF" instead of "certificate
    # required" or "handshake failure", nothing an operator setting up mutual TLS could go
    # on. Under TLS 1.3 the client's handshake ends before the server's check, so it sends
    # its request. Several clients: a server already warm fails them faster.
    for _ in range(4):
        with (
            pytest.raises(ssl.SSLError) as failure,
            mtls_server.connect() as raw,
            _client_context(version).wrap_socket(raw, server_hostname="127.0.0.1") as sock,
        ):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.recv(100)
        assert not isinstance(failure.value, ssl.SSLEOFError), failure.value
        assert "ALERT" in str(failure.value)
    assert mtls_server.alive()
    assert "Traceback" not in mtls_server.output()


# -- TLS: plain HTTP sent to the TLS port -----------------------------------------------------------


def test_plain_http_to_the_tls_port_is_answered_400_in_plain_http(
    mtls_server: ServerProcess,
) -> None:
    """``curl http://host:443/`` got an empty reply (the handshake failed and the connection
    closed): now a plain 400 says why, as nginx answers, and the connection closes without a
    reset though the client's request is bigger than one read. (The first byte decides, before
    any certificate is asked for; TLS clients are served as before: test_cli.py and
    test_loop.py's TLS tests.)"""
    request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n" + b"x" * 200_000
    for _ in range(3):
        with mtls_server.connect() as sock:
            sock.sendall(request)  # more than one read: the server closes with bytes unread
            sock.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
        assert answer.endswith(b"This port speaks HTTPS: the request was sent as plain HTTP.\n")
    assert mtls_server.alive()
    assert "Traceback" not in mtls_server.output()
