"""Static files beyond the shared behaviour: how each adapter sends the body (pathsend, chunks,
wsgi.file_wrapper), the ASGI app under uvicorn, and ``--static PREFIX=DIR`` through real
``tether serve`` / ``tether-threaded`` subprocesses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import httpx
import pytest

from tests.processes import ROOT, RUNNING, free_port, read_until, reaped
from tests.server_asyncio.conftest import running as asyncio_running
from tests.server_threaded.threaded_helpers import running as threaded_running
from tests.server_threaded.threaded_helpers import wait_for
from tether_asyncio.static import StaticFiles as AsgiStatic
from tether_threaded.static import StaticFiles as WsgiStatic

#: Larger than the adapters' read size, so the body takes several chunks.
BIG = os.urandom(700 * 1024)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("public")
    (folder / "big.bin").write_bytes(BIG)
    (folder / "hello.txt").write_bytes(b"hello world\n")
    (folder / "empty.txt").write_bytes(b"")
    return folder


def recording(app: Any, types: list[str], *, pathsend: bool = True) -> Any:
    """``app`` with the message types it sends recorded; ``pathsend=False`` hides the extension."""

    async def wrapper(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not pathsend:
            extensions = dict(scope.get("extensions") or {})
            extensions.pop("http.response.pathsend", None)
            scope = {**scope, "extensions": extensions}

        async def recorded(message: dict[str, Any]) -> None:
            types.append(message["type"])
            await send(message)

        await app(scope, receive, recorded)

    return wrapper


@pytest.mark.parametrize(("offered", "wanted"), [(True, True), (False, True), (True, False)])
def test_asgi_whole_file_uses_pathsend_when_offered(
    root: Path, offered: bool, wanted: bool
) -> None:
    types: list[str] = []
    files = AsgiStatic(root, chunk_size=64 * 1024, pathsend=wanted)
    app = recording(files, types, pathsend=offered)
    pathsend = offered and wanted
    with asyncio_running(app) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/big.bin").content == BIG
        if pathsend:
            assert types == ["http.response.start", "http.response.pathsend"]
        else:
            assert types[0] == "http.response.start"
            assert types.count("http.response.body") == len(BIG) // (64 * 1024) + 1
        types.clear()
        # Ranges are read in chunks either way, across chunk boundaries.
        response = client.get("/big.bin", headers={"range": "bytes=100-200000"})
        assert response.content == BIG[100:200001]
        assert "http.response.pathsend" not in types
        assert client.get("/empty.txt").content == b""


def test_wsgi_whole_file_goes_through_file_wrapper(root: Path) -> None:
    wrapped: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        result = WsgiStatic(root, chunk_size=64 * 1024)(environ, start_response)
        wrapped.append(type(result).__name__)
        return result

    with threaded_running(validator(app)) as server:
        host, port = server.address[:2]
        with httpx.Client(base_url=f"http://{host}:{port}", timeout=10) as client:
            assert client.get("/big.bin").content == BIG
            response = client.get("/big.bin", headers={"range": "bytes=5-9,-3"})
            assert response.status_code == 206
            assert BIG[5:10] in response.content and BIG[-3:] in response.content
            assert client.get("/missing").status_code == 404
            assert client.get("/empty.txt").content == b""
    assert wrapped[0] == "FileWrapper"
    assert wrapped[1] == "_Chunks"


def test_wsgi_without_file_wrapper(root: Path) -> None:
    files = WsgiStatic(root)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/big.bin", "SCRIPT_NAME": ""}
    seen: list[str] = []
    result = files(environ, lambda status, headers: seen.append(status))
    try:
        assert b"".join(result) == BIG
    finally:
        result.close()  # type: ignore[attr-defined]
    assert seen == ["200 OK"]


def test_asgi_app_under_uvicorn(root: Path) -> None:
    uvicorn = pytest.importorskip("uvicorn")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(AsgiStatic(root), lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: server.started, timeout=10)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            assert client.get("/big.bin").content == BIG
            etag = client.get("/hello.txt").headers["etag"]
            assert client.get("/hello.txt", headers={"if-none-match": etag}).status_code == 304
            ranged = client.get("/big.bin", headers={"range": "bytes=-10"})
            assert ranged.status_code == 206 and ranged.content == BIG[-10:]
            for target in ("/../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd"):
                response = raw_get(port, target)
                assert response.startswith(b"HTTP/1.1 404 ") and b"root:" not in response
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
    assert not thread.is_alive()


def raw_get(port: int, target: str) -> bytes:
    """GET ``target`` exactly as written (httpx would remove dot segments) and read to the end."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


# -- --static through the real command lines -----------------------------------------------------

ASGI_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]})
    await send({"type": "http.response.body", "body": b"from the app"})
"""

WSGI_APP = """
def app(environ, start_response):
    start_response("200 OK", [("X-App", "1"), ("Content-Length", "12")])
    return [b"from the app"]
"""


def launch(module: str, cwd: Path, *args: str) -> subprocess.Popen[str]:
    """``python -m module`` importing this checkout's packages (not the venv's install)."""
    sources = [
        str(ROOT / "packages" / name / "src")
        for name in ("core", "server-common", "server-asyncio", "server-threaded")
    ]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(cwd), *sources, str(ROOT)]))
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_server(server: str, cwd: Path, port: int, *static: str) -> subprocess.Popen[str]:
    """``server`` ("tether serve" or "tether-threaded") on port ``port`` with the ``--static``
    options ``static``, in front of this module's app."""
    if server == "tether serve":
        (cwd / "webapp.py").write_text(ASGI_APP)
        command = ("tether_asyncio", cwd, "serve", "webapp:app", "--lifespan", "off")
        return launch(*command, *static, "--port", str(port))
    (cwd / "webapp.py").write_text(WSGI_APP)
    return launch("tether_threaded", cwd, "webapp:app", *static, "--port", str(port))


@pytest.mark.parametrize("server", ["tether serve", "tether-threaded"])
def test_static_option_mounts_in_front_of_the_app(root: Path, tmp_path: Path, server: str) -> None:
    port = free_port()
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.css").write_text("body {}\n")
    static = ["--static", f"/assets={root}", "--static", f"/css/={other}"]
    proc = start_server(server, tmp_path, port, *static)
    ready = RUNNING
    with reaped(proc):
        read_until(proc, ready)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            hello = client.get("/assets/hello.txt")
            assert hello.content == b"hello world\n"
            assert "etag" in hello.headers and "x-app" not in hello.headers
            assert client.get("/assets/big.bin", headers={"range": "bytes=0-1"}).content == BIG[:2]
            assert client.get("/css/x.css").headers["content-type"] == "text/css; charset=utf-8"
            assert client.get("/assets/missing").status_code == 404
            assert raw_get(port, "/assets/../webapp.py").startswith(b"HTTP/1.1 404 ")
            for path in ("/", "/assetsx", "/other"):
                response = client.get(path)
                assert response.headers.get("x-app") == "1", path
        proc.terminate()
        assert proc.wait(10) == 0


@pytest.mark.parametrize("module", ["tether_asyncio", "tether_threaded"])
@pytest.mark.parametrize("value", ["assets=./public", "/assets", "/assets=/nonexistent-dir"])
def test_bad_static_option_is_a_usage_error(tmp_path: Path, module: str, value: str) -> None:
    args = ["serve", "webapp:app"] if module == "tether_asyncio" else ["webapp:app"]
    proc = launch(module, tmp_path, *args, "--static", value, "--port", "0")
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "--static" in err
    assert "Traceback" not in err


def test_asgi_app_alone_under_tether_serve_with_lifespan_on(root: Path) -> None:
    # The ASGI app as the whole application: lifespan "on" requires it to answer startup.
    with (
        asyncio_running(AsgiStatic(root), lifespan="on") as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        assert client.get("/hello.txt").content == b"hello world\n"


@pytest.mark.parametrize("server", ["asyncio", "threaded"])
def test_slash_redirect_is_never_protocol_relative(tmp_path: Path, server: str) -> None:
    # A directory named like a host at the root: "//evil.example" must redirect to a path on
    # this server ("/evil.example/"), not to "//evil.example/", which a browser reads as a host.
    (tmp_path / "evil.example").mkdir()
    contexts = {
        "asyncio": lambda: asyncio_running(AsgiStatic(tmp_path, html=True)),
        "threaded": lambda: threaded_running(WsgiStatic(tmp_path, html=True)),
    }
    with contexts[server]() as running:
        port = running.port if server == "asyncio" else running.address[1]
        response = raw_get(port, "//evil.example?x")
    head = response.split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 307 ")
    assert b"\r\nlocation: /evil.example/?x\r\n" in head + b"\r\n"
