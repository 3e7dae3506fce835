"""Request rules that close smuggling and routing holes, over a real socket on both servers.

- RFC 9110 5.1, RFC 9112 6: a field name that only looks like Content-Length or
  Transfer-Encoding (``Transfer_Encoding``, ``Content.Length``) is refused with 400 before
  any application sees it (a proxy mapping ``_`` to ``-`` would frame the message otherwise);
- RFC 9112 3.2.2: for an absolute-form target the application sees the target's authority as
  the host, never the received Host; a scheme other than http or https is refused with 400.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.server_asyncio.conftest import running as asgi_running
from tests.server_threaded.threaded_helpers import read_until_closed
from tests.server_threaded.threaded_helpers import running as wsgi_running

pytestmark = pytest.mark.timeout(60)


class Seen:
    """What the application was shown: (host, path) per request, across threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[bytes, bytes]] = []

    def add(self, host: bytes, path: bytes) -> bytes:
        with self.lock:
            self.requests.append((host, path))
        return b"host=" + host + b" path=" + path


def asgi_app(seen: Seen) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        host = dict(scope["headers"]).get(b"host", b"")
        body = seen.add(host, scope["path"].encode("latin-1"))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def wsgi_app(seen: Seen) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        host = environ.get("HTTP_HOST", "").encode("latin-1")
        body = seen.add(host, environ["PATH_INFO"].encode("latin-1"))
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    return app


@contextmanager
def _asgi(seen: Seen) -> Iterator[tuple[str, int]]:
    with asgi_running(asgi_app(seen), "asyncio") as server:
        yield server.host, server.port


@contextmanager
def _wsgi(seen: Seen) -> Iterator[tuple[str, int]]:
    with wsgi_running(wsgi_app(seen)) as server:
        host, port = server.address[:2]
        yield host, port


@pytest.fixture(params=["asyncio", "threaded"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[tuple[str, int], Seen]]:
    """A running server of each kind, and what its application was shown."""
    seen = Seen()
    start = _asgi if request.param == "asyncio" else _wsgi
    with start(seen) as address:
        yield address, seen


def exchange(address: tuple[str, int], wire: bytes) -> bytes:
    """Send ``wire``, return everything the server sends until it closes."""
    sock = socket.create_connection(address, timeout=10)
    sock.sendall(wire)
    return read_until_closed(sock)


LOOKALIKES = [
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent_Length: 1000\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent.Length: 5\r\n\r\nhello",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-encoding_: chunked\r\n\r\nhello",
]


class TestFramingFieldLookalikes:
    """RFC 9110 5.1 and RFC 9112 6 (a strictness choice: these are valid tokens)."""

    @pytest.mark.parametrize("wire", LOOKALIKES, ids=["te_", "cl_", "cl.", "te_-beside-cl"])
    def test_refused_with_400_and_closed(
        self, server: tuple[tuple[str, int], Seen], wire: bytes
    ) -> None:
        address, seen = server
        answer = exchange(address, wire)
        assert answer.startswith(b"HTTP/1.1 400 "), answer
        assert b"looks like" in answer
        assert seen.requests == []

    def test_real_names_still_work(self, server: tuple[tuple[str, int], Seen]) -> None:
        address, seen = server
        wire = b"POST /x HTTP/1.1\r\nHost: a\r\nCONTENT-LENGTH: 2\r\nConnection: close\r\n\r\nhi"
        answer = exchange(address, wire)
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        assert seen.requests == [(b"a", b"/x")]


class TestAbsoluteFormTarget:
    """RFC 9112 3.2.2: the origin server MUST ignore the received Host."""

    def test_app_sees_the_target_authority(self, server: tuple[tuple[str, int], Seen]) -> None:
        address, seen = server
        wire = b"GET http://evil.example/dump HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        answer = exchange(address, wire)
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        assert answer.endswith(b"host=evil.example path=/dump")
        assert seen.requests == [(b"evil.example", b"/dump")]

    def test_http10_without_host_gets_one(self, server: tuple[tuple[str, int], Seen]) -> None:
        address, seen = server
        answer = exchange(address, b"GET https://b.example:8443/p?q HTTP/1.0\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        assert seen.requests == [(b"b.example:8443", b"/p")]

    @pytest.mark.parametrize(
        "target",
        [b"ftp://evil.example/dump", b"http://user@evil.example/", b"http:///dump"],
        ids=["ftp", "userinfo", "empty-host"],
    )
    def test_refused(self, server: tuple[tuple[str, int], Seen], target: bytes) -> None:
        address, seen = server
        answer = exchange(address, b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % target)
        assert answer.startswith(b"HTTP/1.1 400 "), answer
        assert seen.requests == []


class TestConnect:
    """RFC 9110 9.3.6: a 2xx to CONNECT turns the connection into a tunnel, which neither ASGI
    nor WSGI can carry. Both servers answer 501 themselves, without calling the application,
    and keep the connection for the next request (the request was whole: nothing to drain)."""

    def test_501_without_the_app_and_the_connection_goes_on(
        self, server: tuple[tuple[str, int], Seen]
    ) -> None:
        address, seen = server
        wire = (
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
            b"GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        answer = exchange(address, wire)
        assert answer.startswith(b"HTTP/1.1 501 "), answer
        # The second request was read as HTTP (no tunnel opened) and reached the app.
        assert answer.count(b"HTTP/1.1 ") == 2, answer
        assert answer.endswith(b"host=a path=/after")
        assert seen.requests == [(b"a", b"/after")]
