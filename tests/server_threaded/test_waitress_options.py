"""What waitress users expect of tether-threaded: --expose-tracebacks, --unix-socket-perms,
--url-prefix (SCRIPT_NAME and PATH_INFO), wsgi.multiprocess under --workers. Real sockets."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import free_port, read_until, reaped, spawn, touch_with
from tether_asyncio._cli import build_parser as asyncio_parser
from tether_asyncio._cli import config_from_args as asyncio_config
from tether_threaded._cli import build_parser, config_from_args

pytestmark = pytest.mark.timeout(120)


def failing(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    return [str(1 // 0).encode()]


def paths(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    body = json.dumps([environ["SCRIPT_NAME"], environ["PATH_INFO"]]).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def url(server: Any, path: str = "/") -> str:
    host, port = server.address[:2]
    return f"http://{host}:{port}{path}"


@pytest.mark.parametrize("expose", [False, True])
def test_expose_tracebacks_puts_the_traceback_in_the_500(serve: Any, expose: bool) -> None:
    with serve(failing, expose_tracebacks=expose) as server:
        response = httpx.get(url(server))
    assert response.status_code == 500
    assert response.headers["connection"] == "close"
    assert ("ZeroDivisionError" in response.text) is expose
    assert ("Traceback (most recent call last)" in response.text) is expose


@pytest.mark.parametrize("mode", [0o600, 0o660])
def test_unix_socket_perms(serve: Any, tmp_path: Path, mode: int) -> None:
    path = tmp_path / "app.sock"
    with serve(paths, uds=str(path), unix_socket_perms=mode):
        assert stat.S_IMODE(os.stat(path).st_mode) == mode
        transport = httpx.HTTPTransport(uds=str(path))
        with httpx.Client(transport=transport) as client:
            assert client.get("http://x/a").status_code == 200


def test_unix_socket_perms_and_url_prefix_are_options_of_both_servers() -> None:
    args = ["--unix-socket-perms", "640", "--url-prefix", "/app"]
    threaded = config_from_args(build_parser().parse_args(["app:app", *args]))
    asgi = asyncio_config(asyncio_parser().parse_args(["serve", "app:app", *args]))
    for config in (threaded, asgi):
        assert (config.unix_socket_perms, config.root_path) == (0o640, "/app")
    assert config_from_args(build_parser().parse_args(["a:b"])).unix_socket_perms == 0o666
    with pytest.raises(SystemExit):
        build_parser().parse_args(["a:b", "--unix-socket-perms", "9"])


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/app/x", ["/app", "/x"]),  # the proxy passed the prefix on
        ("/x", ["/app", "/x"]),  # the proxy removed it (uvicorn's root_path)
        ("/app", ["/app", ""]),
        ("/apple", ["/app", "/apple"]),  # not under the prefix: left alone
    ],
)
def test_root_path_is_script_name(serve: Any, path: str, expected: list[str]) -> None:
    with serve(paths, root_path="/app/") as server:
        assert httpx.get(url(server, path)).json() == expected


MULTI_APP = """
def app(environ, start_response):
    body = repr(environ["wsgi.multiprocess"]).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""


@pytest.mark.parametrize(("workers", "expected"), [("2", "True"), ("1", "False")])
def test_wsgi_multiprocess_under_workers(tmp_path: Path, workers: str, expected: str) -> None:
    touch_with(tmp_path / "multiapp.py", MULTI_APP)
    port = free_port()
    proc = spawn(
        "tether_threaded", tmp_path, "multiapp:app", "--port", str(port), "--workers", workers
    )
    with reaped(proc):
        read_until(proc, f"127.0.0.1:{port}", int(workers))
        assert httpx.get(f"http://127.0.0.1:{port}/").text == expected


@pytest.mark.parametrize(
    ("declared", "status"), [(1 << 30, b"100"), ((1 << 30) + 1, b"413")], ids=["1GiB", "1GiB+1"]
)
def test_the_default_body_limit_is_waitress_1_gib(serve: Any, declared: int, status: bytes) -> None:
    """Without --limit-request-body the gathered body is capped at 1 GiB (waitress's
    max_request_body_size): a larger Content-Length gets 413 at the head, before any byte of
    the body is read or spooled; 1 GiB exactly is accepted (100 Continue: send it)."""
    import socket

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    with serve(app) as server:
        sock = socket.create_connection(server.address[:2], timeout=10)
        with sock:
            sock.sendall(
                b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                b"Content-Length: %d\r\n\r\n" % declared
            )
            answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 " + status), answer
