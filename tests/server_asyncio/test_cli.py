"""The ``tether`` command line in a real subprocess: serving, errors, signals, TLS."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import free_port, read_until, reaped, spawn

pytestmark = pytest.mark.timeout(90)


def test_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tether_asyncio", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for option in (
        "--host",
        "--port",
        "--uds",
        "--fd",
        "--backend",
        "--limit-concurrency",
        "--limit-connections",
        "--timeout-graceful-shutdown",
        "--ssl-certfile",
        "--access-log",
        "--no-access-log",
        "--log-level",
        "MODULE:APP",
    ):
        assert option in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nodots"], 'could not import module "nodots"'),
        (["slowapp:"], 'app must be given as "MODULE:ATTRIBUTE" or "MODULE"'),
        (["no_such_module_xyz:app"], 'could not import module "no_such_module_xyz"'),
        (["slowapp:nothing"], 'attribute "nothing" not found in module "slowapp"'),
        (["slowapp:app", "--ssl-certfile", "/nonexistent/cert.pem"], "no such file"),
        (["slowapp:app", "--forwarded-allow-ips", "localhost"], "not an IP address"),
    ],
)
def test_user_errors_are_one_line(app_dir: Path, args: list[str], message: str) -> None:
    proc = spawn("tether_asyncio", app_dir, "serve", *args, "--port", "0")
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_port_in_use_is_one_line(app_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = spawn("tether_asyncio", app_dir, "serve", "slowapp:app", "--port", str(port))
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert f"cannot bind to 127.0.0.1:{port}" in err
    assert "Traceback" not in err


def test_failed_startup_exits_non_zero(app_dir: Path) -> None:
    proc = spawn(
        "tether_asyncio", app_dir, "serve", "badstart:app", "--port", "0", "--lifespan", "on"
    )
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 3
    assert "application startup failed: database unreachable" in err


@pytest.fixture(params=["asyncio", "trio"])
def slow_server(
    request: pytest.FixtureRequest, app_dir: Path
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    proc = spawn(
        "tether_asyncio",
        app_dir,
        "serve",
        "slowapp:app",
        "--port",
        str(port),
        "--backend",
        request.param,
        "--timeout-graceful-shutdown",
        "20",
    )
    with reaped(proc):
        read_until(proc, "running on")
        yield proc, port


def test_sigterm_loses_no_in_flight_request(slow_server: tuple[subprocess.Popen[str], int]) -> None:
    proc, port = slow_server
    results: list[tuple[int, str]] = []
    started = threading.Barrier(9)

    def request() -> None:
        with httpx.Client(timeout=30) as client:
            started.wait()
            response = client.get(f"http://127.0.0.1:{port}/?1.0")
            results.append((response.status_code, response.text))

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    started.wait()
    # Wait until all 8 requests are inside the app (it prints a line for each).
    assert proc.stdout is not None
    for _ in range(8):
        assert proc.stdout.readline() == "in app\n"
    proc.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(30)
    assert proc.wait(30) == 0
    assert results == [(200, "done")] * 8
    assert proc.stderr is not None
    assert "SIGTERM received: shutting down" in proc.stderr.read()


def test_second_signal_forces_exit(slow_server: tuple[subprocess.Popen[str], int]) -> None:
    proc, port = slow_server
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"GET /?60 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert proc.stdout is not None
    assert proc.stdout.readline() == "in app\n"
    proc.send_signal(signal.SIGINT)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "waiting for" in line:
            break
    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == 0
    sock.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_tls(app_dir: Path) -> None:
    cert, key = app_dir / "cert.pem", app_dir / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    port = free_port()
    proc = spawn(
        "tether_asyncio",
        app_dir,
        "serve",
        "slowapp:app",
        "--port",
        str(port),
        "--ssl-certfile",
        str(cert),
        "--ssl-keyfile",
        str(key),
    )
    try:
        line = read_until(proc, "running on")[-1]
        assert re.search(r"https://127\.0\.0\.1:\d+", line)
        response = httpx.get(f"https://127.0.0.1:{port}/?0", verify=False)
        assert response.status_code == 200
        assert response.text == "done"
        # Plain HTTP to the TLS port fails the handshake without hurting the server: the
        # client is told so in plain HTTP.
        with socket.create_connection(("127.0.0.1", port)) as plain:
            plain.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            plain.settimeout(10)
            assert plain.recv(100).startswith(b"HTTP/1.1 400 ")
        assert httpx.get(f"https://127.0.0.1:{port}/?0", verify=False).text == "done"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)


def test_demo_app_is_the_default(tmp_path: Path) -> None:
    port = free_port()
    proc = spawn("tether_asyncio", tmp_path, "serve", "--port", str(port))
    try:
        read_until(proc, "running on")
        base = f"http://127.0.0.1:{port}"
        assert "Tether" in httpx.get(base + "/").text
        response = httpx.get(base + "/download?size=1000", headers={"Range": "bytes=10-19"})
        assert response.status_code == 206
        assert response.content == bytes(i % 251 for i in range(10, 20))
        assert response.headers["content-range"] == "bytes 10-19/1000"
        upload = httpx.post(base + "/upload", files={"f": ("a.txt", b"abc")}).json()
        assert upload["parts"][0]["size"] == 3
        events = httpx.get(base + "/clock?count=2").text
        assert events.count("event: tick") == 2
        from websockets.sync.client import connect

        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            ws.send("ping")
            assert ws.recv() == "ping"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
