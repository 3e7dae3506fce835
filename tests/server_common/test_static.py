"""Static files (issue 14) over real sockets on both servers: the ASGI app under tether serve (asyncio
and trio) and the WSGI app under tether-threaded, each mounted at ``/static`` in front of an app.

The decisions are the core's (conditional, ranges, coding); these tests check that a client sees
them end to end, and that no request reads a byte outside the directory.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import brotli
import httpx
import pytest

from tests.server_asyncio.conftest import running as asyncio_running
from tests.server_threaded.threaded_helpers import running as threaded_running
from tether_asyncio.static import StaticFiles as AsgiStatic
from tether_asyncio.static import with_static as asgi_with_static
from tether_threaded.static import StaticFiles as WsgiStatic
from tether_threaded.static import with_static as wsgi_with_static

SECRET = b"TOPSECRET-outside-the-root"
DATA = bytes(range(256)) * 8  # 2048 bytes, every offset recognisable
NOT_FOUND_PAGE = b"<h1>no such page</h1>\n"
SCRIPT = b"console.log('hello from a script that compresses well');\n" * 40


def make_site(base: Path) -> Path:
    """``base/root`` to serve and ``base/secret`` beside it, which must never be served."""
    root = base / "root"
    (root / "docs").mkdir(parents=True)
    (root / "a").mkdir()
    (root / "empty-dir").mkdir()
    (base / "secret").write_bytes(SECRET)
    (root / "hello.txt").write_bytes(b"hello world\n")
    (root / "data.bin").write_bytes(DATA)
    (root / "app.js").write_bytes(SCRIPT)
    (root / "app.js.br").write_bytes(brotli.compress(SCRIPT))
    (root / "app.js.gz").write_bytes(gzip.compress(SCRIPT))
    (root / "docs" / "index.html").write_bytes(b"<h1>docs</h1>\n")
    (root / "404.html").write_bytes(NOT_FOUND_PAGE)
    (root / "escape").symlink_to(base / "secret")
    (root / "escape-dir").symlink_to(base)
    (root / "alias.txt").symlink_to(root / "hello.txt")  # inside the root: allowed
    os.mkfifo(root / "pipe")
    return root


def fallback_asgi() -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]})
        await send({"type": "http.response.body", "body": b"from the app"})

    return app


def fallback_wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("X-App", "1"), ("Content-Length", "12")])
    return [b"from the app"]


@dataclass
class Site:
    kind: str
    host: str
    port: int
    root: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def raw(self, request: bytes) -> bytes:
        """Send raw request bytes (the request asks to close) and read everything back."""
        with socket.create_connection((self.host, self.port), timeout=10) as sock:
            sock.sendall(request)
            chunks = []
            while data := sock.recv(65536):
                chunks.append(data)
        return b"".join(chunks)


@contextlib.contextmanager
def serving(kind: str, root: Path) -> Iterator[Site]:
    options: dict[str, Any] = {"html": True, "max_age": 60}
    if kind == "threaded":
        wsgi = wsgi_with_static(
            fallback_wsgi,
            [("/static", WsgiStatic(root, **options)), ("/plain", WsgiStatic(root))],
        )
        with threaded_running(wsgi) as server:
            host, port = server.address[:2]
            yield Site(kind, host, port, root)
    else:
        asgi = asgi_with_static(
            fallback_asgi(),
            [("/static", AsgiStatic(root, **options)), ("/plain", AsgiStatic(root))],
        )
        with asyncio_running(asgi, kind) as running:
            yield Site(kind, running.host, running.port, root)


@pytest.fixture(scope="module", params=["asyncio", "trio", "threaded"])
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    root = make_site(tmp_path_factory.mktemp("static"))
    with serving(request.param, root) as running:
        yield running


@pytest.fixture
def client(site: Site) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, timeout=10) as c:
        yield c


def raw_body(client: httpx.Client, path: str, **headers: str) -> tuple[httpx.Response, bytes]:
    """A response and its body exactly as sent (httpx would undo a Content-Encoding)."""
    with client.stream("GET", path, headers=headers) as response:
        return response, b"".join(response.iter_raw())


# -- 200, HEAD, 405 ------------------------------------------------------------------------------


def test_get_sends_the_file_with_its_validators(client: httpx.Client, site: Site) -> None:
    response = client.get("/static/hello.txt")
    assert response.status_code == 200
    assert response.content == b"hello world\n"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-length"] == "12"
    assert re.fullmatch(r'"[0-9a-f]+-c"', response.headers["etag"])
    mtime = (site.root / "hello.txt").stat().st_mtime
    assert int(parsedate_to_datetime(response.headers["last-modified"]).timestamp()) == int(mtime)
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["cache-control"] == "public, max-age=60"
    assert "vary" not in response.headers  # no precompressed sibling: nothing varies


def test_binary_file_and_symlink_inside_the_root(client: httpx.Client) -> None:
    response = client.get("/static/data.bin")
    assert response.content == DATA
    assert response.headers["content-type"] == "application/octet-stream"
    assert client.get("/static/alias.txt").content == b"hello world\n"


def test_head_has_the_get_headers_and_no_body(client: httpx.Client) -> None:
    get = client.get("/static/data.bin")
    head = client.head("/static/data.bin")
    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-length", "content-type", "etag", "last-modified"):
        assert head.headers[name] == get.headers[name]
    # The same connection still frames the next response right (no stray body bytes).
    assert client.get("/static/hello.txt").content == b"hello world\n"


def test_other_methods_are_405_with_allow(client: httpx.Client) -> None:
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        response = client.request(method, "/static/hello.txt")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD"


def test_requests_outside_the_mounts_reach_the_app(client: httpx.Client) -> None:
    for path in ("/", "/hello.txt", "/staticx/hello.txt"):
        response = client.get(path)
        assert response.headers.get("x-app") == "1", path
        assert response.content == b"from the app"
    assert "x-app" not in client.get("/static/missing").headers


# -- conditional requests ------------------------------------------------------------------------


def test_if_none_match_is_304(client: httpx.Client) -> None:
    etag = client.get("/static/hello.txt").headers["etag"]
    response = client.get("/static/hello.txt", headers={"if-none-match": etag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert response.headers["cache-control"] == "public, max-age=60"
    weak = client.get("/static/hello.txt", headers={"if-none-match": f'"other", W/{etag}'})
    assert weak.status_code == 304
    assert client.get("/static/hello.txt", headers={"if-none-match": '"other"'}).status_code == 200


def test_if_modified_since_is_304(client: httpx.Client) -> None:
    last_modified = client.get("/static/hello.txt").headers["last-modified"]
    response = client.get("/static/hello.txt", headers={"if-modified-since": last_modified})
    assert response.status_code == 304
    old = "Sun, 06 Nov 1994 08:49:37 GMT"
    assert client.get("/static/hello.txt", headers={"if-modified-since": old}).status_code == 200


def test_failed_preconditions_are_412(client: httpx.Client) -> None:
    assert client.get("/static/hello.txt", headers={"if-match": '"nope"'}).status_code == 412
    old = "Sun, 06 Nov 1994 08:49:37 GMT"
    response = client.get("/static/hello.txt", headers={"if-unmodified-since": old})
    assert response.status_code == 412
    etag = client.get("/static/hello.txt").headers["etag"]
    assert client.get("/static/hello.txt", headers={"if-match": etag}).status_code == 200


# -- ranges --------------------------------------------------------------------------------------


def test_single_range_is_206(client: httpx.Client) -> None:
    response = client.get("/static/data.bin", headers={"range": "bytes=10-19"})
    assert response.status_code == 206
    assert response.content == DATA[10:20]
    assert response.headers["content-range"] == f"bytes 10-19/{len(DATA)}"
    assert response.headers["content-length"] == "10"
    suffix = client.get("/static/data.bin", headers={"range": "bytes=-5"})
    assert suffix.content == DATA[-5:]


def test_several_ranges_are_multipart_in_request_order(client: httpx.Client) -> None:
    response = client.get("/static/data.bin", headers={"range": "bytes=1000-1009, 0-4, 2040-"})
    assert response.status_code == 206
    kind, _, boundary = response.headers["content-type"].partition("; boundary=")
    assert kind == "multipart/byteranges"
    assert int(response.headers["content-length"]) == len(response.content)
    parts = response.content.split(b"--" + boundary.encode())
    assert parts[0] == b"" and parts[-1] == b"--\r\n"
    found = []
    for part in parts[1:-1]:
        head, _, body = part.partition(b"\r\n\r\n")
        assert b"content-type: application/octet-stream" in head
        (content_range,) = re.findall(rb"content-range: bytes (\d+)-(\d+)/2048", head)
        start, end = int(content_range[0]), int(content_range[1])
        assert body.removesuffix(b"\r\n") == DATA[start : end + 1]
        found.append((start, end))
    assert found == [(1000, 1009), (0, 4), (2040, 2047)]


def test_unsatisfiable_range_is_416(client: httpx.Client) -> None:
    response = client.get("/static/data.bin", headers={"range": "bytes=5000-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(DATA)}"
    assert response.content == b""


def test_if_range(client: httpx.Client) -> None:
    etag = client.get("/static/data.bin").headers["etag"]
    current = client.get("/static/data.bin", headers={"range": "bytes=0-3", "if-range": etag})
    assert current.status_code == 206
    assert current.content == DATA[:4]
    stale = client.get("/static/data.bin", headers={"range": "bytes=0-3", "if-range": '"old"'})
    assert stale.status_code == 200
    assert stale.content == DATA


def test_head_with_range_is_the_full_head(client: httpx.Client) -> None:
    response = client.head("/static/data.bin", headers={"range": "bytes=0-3"})
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(DATA))


# -- precompressed siblings ----------------------------------------------------------------------


def test_precompressed_sibling_follows_accept_encoding(client: httpx.Client) -> None:
    tags = set()
    for accept, coding, decode in (
        ("br, gzip", "br", brotli.decompress),
        ("gzip", "gzip", gzip.decompress),
        ("gzip;q=0.5, br;q=0.4", "gzip", gzip.decompress),
        ("identity", None, bytes),
        ("", None, bytes),
    ):
        response, body = raw_body(client, "/static/app.js", **{"accept-encoding": accept})
        assert response.status_code == 200, accept
        assert response.headers.get("content-encoding") == coding, accept
        assert response.headers["vary"].lower() == "accept-encoding"
        assert response.headers["content-type"] == "text/javascript; charset=utf-8"
        assert int(response.headers["content-length"]) == len(body)
        assert decode(body) == SCRIPT
        tags.add(response.headers["etag"])
    assert len(tags) == 3  # one ETag per coding


def test_precompressed_conditional_and_range(client: httpx.Client) -> None:
    response, body = raw_body(client, "/static/app.js", **{"accept-encoding": "br"})
    etag = response.headers["etag"]
    again = client.get("/static/app.js", headers={"accept-encoding": "br", "if-none-match": etag})
    assert again.status_code == 304
    assert again.headers["vary"].lower() == "accept-encoding"
    # The identity representation has another tag: it does not match.
    other = client.get(
        "/static/app.js", headers={"accept-encoding": "identity", "if-none-match": etag}
    )
    assert other.status_code == 200
    part, piece = raw_body(
        client, "/static/app.js", **{"accept-encoding": "br", "range": "bytes=0-9"}
    )
    assert part.status_code == 206
    assert piece == body[:10]


# -- directories ---------------------------------------------------------------------------------


def test_directory_index_and_slash_redirect(client: httpx.Client) -> None:
    response = client.get("/static/docs/")
    assert response.status_code == 200
    assert response.content == b"<h1>docs</h1>\n"
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    redirect = client.get("/static/docs?x=1")
    assert redirect.status_code == 307
    assert redirect.headers["location"] == "/static/docs/?x=1"
    assert client.get("/static").headers["location"] == "/static/"
    assert client.get("/static/empty-dir/").status_code == 404
    assert client.get("/static/hello.txt/").status_code == 404


def test_html_mode_sends_404_html(client: httpx.Client) -> None:
    response = client.get("/static/missing.txt")
    assert response.status_code == 404
    assert response.content == NOT_FOUND_PAGE
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    head = client.head("/static/missing.txt")
    assert head.status_code == 404 and head.content == b""
    plain = client.get("/plain/missing.txt")
    assert plain.status_code == 404
    assert plain.content == b"Not Found"


def test_without_html_directories_are_404(client: httpx.Client) -> None:
    assert client.get("/plain/docs/").status_code == 404
    assert client.get("/plain/docs").status_code == 404
    assert client.get("/plain/docs/index.html").status_code == 200


# -- traversal -----------------------------------------------------------------------------------

TRAVERSALS = [
    "/static/../secret",
    "/static/%2e%2e/secret",
    "/static/%2E%2E/%2e%2e/etc/passwd",
    "/static/a/..%2f..%2fsecret",
    "/static/a/%2e%2e%2f%2e%2e%2fsecret",
    "/static/escape",
    "/static/escape-dir/secret",
    "/static/hello.txt%00.png",
    "/static/..%5csecret",
    "/static/a\\..\\..\\secret",
    "/static/pipe",
    "/plain/../secret",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_traversal_is_404_and_leaks_nothing(site: Site, target: str) -> None:
    response = site.raw(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert response.startswith(b"HTTP/1.1 404 "), response[:100]
    assert SECRET not in response
    assert b"root:" not in response


def test_absolute_path_under_the_mount_is_404(site: Site) -> None:
    secret = site.root.parent / "secret"
    response = site.raw(
        f"GET /static/{secret} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )
    assert response.startswith(b"HTTP/1.1 404 ")
    assert SECRET not in response
