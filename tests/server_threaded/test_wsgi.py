"""PEP 3333 end to end: real sockets, httpx and raw clients, apps wrapped in wsgiref.validate."""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import httpx
import pytest
from threaded_helpers import connect, read_until_closed, running, wait_for

from tether_threaded import FileWrapper

Environ = dict[str, Any]


def _echo_environ(environ: Environ, start_response: Any) -> list[bytes]:
    keys = (
        "REQUEST_METHOD",
        "SCRIPT_NAME",
        "PATH_INFO",
        "QUERY_STRING",
        "SERVER_PROTOCOL",
        "SERVER_NAME",
        "SERVER_PORT",
        "REMOTE_ADDR",
        "CONTENT_TYPE",
        "CONTENT_LENGTH",
        "HTTP_X_MULTI",
        "HTTP_COOKIE",
        "HTTP_HOST",
        "wsgi.url_scheme",
    )
    lines = [f"{key}={environ.get(key)!s}" for key in keys]
    lines.append(f"underscore={'HTTP_X_UNDER_SCORE' in environ}")
    body = "\n".join(lines).encode("latin-1")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _parse(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


@pytest.fixture(autouse=True)
def _validate_warnings_are_errors() -> Iterator[None]:
    # wsgiref.validate reports some problems as warnings; they must fail the test.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_environ_basics() -> None:
    with running(validator(_echo_environ), root_path="/mnt") as server:
        host, port = server.address[:2]
        sock = connect(server)
        sock.sendall(
            b"GET /mnt/a%20b/c?x=1&y=%20 HTTP/1.1\r\nHost: example.org\r\n"
            b"X-Multi: one\r\nX-Multi: two\r\nCookie: a=1\r\nCookie: b=2\r\n"
            b"X-Under_Score: spoof\r\nConnection: close\r\n\r\n"
        )
        raw = read_until_closed(sock)
        sock.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    env = _parse(body.decode("latin-1"))
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == "/mnt"
    assert env["PATH_INFO"] == "/a b/c"
    assert env["QUERY_STRING"] == "x=1&y=%20"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_NAME"] == host
    assert env["SERVER_PORT"] == str(port)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["HTTP_X_MULTI"] == "one, two"
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    assert env["HTTP_HOST"] == "example.org"
    assert env["wsgi.url_scheme"] == "http"
    assert env["underscore"] == "False"
    assert env["CONTENT_TYPE"] == "None"


def test_path_outside_root_path_is_kept_whole() -> None:
    with running(validator(_echo_environ), root_path="/mnt") as server:
        r = httpx.get(server.url() + "/mntx/y")
    env = _parse(r.text)
    assert env["SCRIPT_NAME"] == "/mnt"
    assert env["PATH_INFO"] == "/mntx/y"


def test_non_utf8_path_is_latin1_decoded_bytes() -> None:
    """PEP 3333: environ strings are bytes decoded as ISO-8859-1."""
    with running(validator(_echo_environ)) as server:
        r = httpx.get(server.url() + "/caf%C3%A9")
    assert _parse(r.content.decode("latin-1"))["PATH_INFO"] == "/caf\u00c3\u00a9"


def test_bad_percent_encoding_is_400() -> None:
    """RFC 3986 2.1: a percent-encoded octet is "%" HEXDIG HEXDIG."""
    called = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        called.append(1)
        start_response("200 OK", [])
        return []

    with running(app) as server:
        sock = connect(server)
        sock.sendall(b"GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = read_until_closed(sock)
    assert raw.startswith(b"HTTP/1.1 400 ")
    assert not called


def test_http10_and_server_protocol() -> None:
    with running(validator(_echo_environ)) as server:
        sock = connect(server)
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        raw = read_until_closed(sock)
    assert raw.startswith(b"HTTP/1.1 200 OK")
    assert b"SERVER_PROTOCOL=HTTP/1.0" in raw


def _body_app(environ: Environ, start_response: Any) -> list[bytes]:
    stream = environ["wsgi.input"]
    mode = environ["QUERY_STRING"]
    if mode == "read":
        data = stream.read(-1)
    elif mode == "chunks":
        parts = []
        while True:
            part = stream.read(7)
            if not part:
                break
            assert len(part) <= 7
            parts.append(part)
        data = b"".join(parts)
    elif mode == "readline":
        data = b"|".join(iter(lambda: stream.readline(5), b""))
    elif mode == "readlines":
        data = b"|".join(stream.readlines())
    else:
        data = b"|".join(stream)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [data]


BODY = b"line one\nline two is longer\n\nlast without newline"


@pytest.mark.parametrize("mode", ["read", "chunks", "readline", "readlines", "iter"])
@pytest.mark.parametrize("chunked", [False, True])
def test_wsgi_input(mode: str, chunked: bool) -> None:
    def gen() -> Iterator[bytes]:
        for i in range(0, len(BODY), 5):
            yield BODY[i : i + 5]

    with running(validator(_body_app)) as server:
        content: Any = gen() if chunked else BODY
        r = httpx.post(server.url() + "/?" + mode, content=content)
    assert r.status_code == 200
    if mode in ("read", "chunks"):
        assert r.content == BODY
    elif mode == "readline":
        lines: list[bytes] = []
        for line in BODY.splitlines(keepends=True):
            lines.extend(line[i : i + 5] for i in range(0, len(line), 5))
        assert r.content == b"|".join(lines)
    else:
        assert r.content == b"|".join(BODY.splitlines(keepends=True))


def test_chunked_body_reaches_the_app_dechunked_with_content_length() -> None:
    """Frameworks that read only CONTENT_LENGTH (Django, Bottle, Falcon) get a chunked body."""
    seen: dict[str, Any] = {}

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        seen["length"] = environ.get("CONTENT_LENGTH")
        seen["te"] = environ.get("HTTP_TRANSFER_ENCODING")
        seen["body"] = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        seen["terminated"] = environ["wsgi.input_terminated"]
        start_response("200 OK", [("Content-Length", "0")])
        return []

    with running(app) as server:
        sock = connect(server)
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
            b"\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
        raw = read_until_closed(sock)
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert seen == {"length": "11", "te": None, "body": b"hello world", "terminated": True}


def test_large_body_streams_through_a_small_buffer() -> None:
    """A 20 MB upload is read piecewise; the app sees every byte in order."""
    size = 20 * 1024 * 1024
    seen = {}

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        total = 0
        digest = 0
        while True:
            block = stream.read(65536)
            if not block:
                break
            total += len(block)
            digest = (digest + sum(block[::4096])) % 1_000_003
        seen["total"] = total
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(digest).encode()]

    payload = bytes(range(256)) * (size // 256)
    with running(app) as server:
        r = httpx.post(server.url(), content=payload, timeout=30)
    assert seen["total"] == size
    assert r.text == str(sum(payload[::4096]) % 1_000_003)


def test_start_response_exc_info_replaces_headers_before_body() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("boom")
        except ValueError:
            start_response("500 Oops", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"replaced"]

    with running(validator(app)) as server:
        r = httpx.get(server.url())
    assert r.status_code == 500
    assert r.text == "replaced"


def test_start_response_exc_info_after_body_reraises_and_cuts_the_response() -> None:
    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"partial"
        try:
            raise ValueError("late failure")
        except ValueError:
            start_response("500 Oops", [("Content-Type", "text/plain")], sys.exc_info())
        yield b"never"

    with running(app) as server:
        sock = connect(server)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = read_until_closed(sock)
    # The chunked body has no last chunk: the client can tell the response is incomplete.
    assert raw.startswith(b"HTTP/1.1 200 OK")
    assert b"partial" in raw
    assert b"never" not in raw
    assert not raw.endswith(b"0\r\n\r\n")


def test_second_start_response_without_exc_info_is_an_error() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"x"]

    with running(app) as server:
        r = httpx.get(server.url())
    assert r.status_code == 500


def test_legacy_write_callable() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"hello ")
        write(b"world")
        return [b"!"]

    with running(validator(app)) as server:
        r = httpx.get(server.url())
    assert r.text == "hello world!"
    assert r.headers["transfer-encoding"] == "chunked"


class _Closing:
    def __init__(self, pieces: list[bytes], fail: bool = False) -> None:
        self.pieces = pieces
        self.fail = fail
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        yield from self.pieces
        if self.fail:
            raise RuntimeError("iteration failed")

    def close(self) -> None:
        self.closed.set()


@pytest.mark.parametrize("fail", [False, True])
def test_close_is_always_called(fail: bool) -> None:
    result = _Closing([b"a", b"b"], fail=fail)

    def app(environ: Environ, start_response: Any) -> _Closing:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return result

    with running(app) as server:
        try:
            r = httpx.get(server.url())
            assert r.text == "ab"
        except httpx.RemoteProtocolError:
            assert fail
        assert result.closed.wait(5)


def test_app_exception_before_response_is_500_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        raise KeyError("missing")

    with running(app) as server:
        r = httpx.get(server.url())
    assert r.status_code == 500
    assert r.headers["connection"] == "close"
    assert any("Exception in the WSGI application" in rec.message for rec in caplog.records)


def test_hop_by_hop_header_from_app_is_refused() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Transfer-Encoding", "chunked")])
        return [b"x"]

    with running(app) as server:
        r = httpx.get(server.url())
    assert r.status_code == 500


def test_connection_close_from_app_closes() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Connection", "close")])
        return [b"bye"]

    with running(app) as server:
        sock = connect(server)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = read_until_closed(sock)
    assert raw.endswith(b"bye")
    assert b"connection: close" in raw.lower()


def _hello(environ: Environ, start_response: Any) -> list[bytes]:
    body = environ["PATH_INFO"].encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


def test_keep_alive_and_pipelining_in_order() -> None:
    with running(validator(_hello)) as server:
        sock = connect(server)
        requests = (
            b"".join(b"GET /r%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(20))
            + b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(requests)
        raw = read_until_closed(sock)
    bodies = [part.split(b"\r\n\r\n", 1)[1][:12] for part in raw.split(b"HTTP/1.1 200 OK")[1:]]
    assert len(bodies) == 21
    for i in range(20):
        assert b"/r%d\r\n" % i in bodies[i]
    assert b"/last" in bodies[20]


def test_pipelined_bytes_split_byte_by_byte() -> None:
    with running(_hello) as server:
        sock = connect(server)
        requests = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        for i in range(len(requests)):
            sock.send(requests[i : i + 1])
        raw = read_until_closed(sock)
    assert raw.count(b"HTTP/1.1 200 OK") == 2
    assert raw.endswith(b"/b")


def test_head_has_no_body_but_keeps_the_length() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"hello"]

    with running(validator(app)) as server:
        sock = connect(server)
        sock.sendall(
            b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        raw = read_until_closed(sock)
    first, second = raw.split(b"HTTP/1.1 200 OK")[1:]
    assert first.endswith(b"\r\n\r\n")
    assert b"content-length: 5" in first.lower()
    assert second.endswith(b"hello")


def test_expect_100_continue_is_sent_when_the_app_reads() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        data = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"got " + data]

    with running(app) as server:
        sock = connect(server)
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = sock.recv(100)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = read_until_closed(sock)
    assert raw.split(b"\r\n\r\n")[1].startswith(b"got hello")


def test_expect_100_continue_is_answered_by_the_loop_even_if_the_app_ignores_the_body() -> None:
    """The loop gathers every body before the app runs, so it says 100 Continue at once."""
    calls: list[bytes] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        calls.append(environ["CONTENT_LENGTH"].encode())
        start_response("403 Forbidden", [("Content-Type", "text/plain")])
        return [b"no"]

    with running(app) as server:
        sock = connect(server)
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        assert not calls  # the app runs once the body is here
        sock.sendall(b"hello")
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = read_until_closed(sock)
    assert raw.startswith(b"HTTP/1.1 403 Forbidden")
    assert calls[0] == b"5"


def test_file_wrapper_uses_sendfile_and_honours_position_and_length(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Count the real os.sendfile calls (the server runs in this process).
    calls = []
    real_sendfile = os.sendfile

    def counting_sendfile(*args: Any) -> int:
        calls.append(args[3])
        return real_sendfile(*args)

    monkeypatch.setattr(os, "sendfile", counting_sendfile)
    path = tmp_path / "data.bin"
    payload = os.urandom(3 * 1024 * 1024 + 17)
    path.write_bytes(payload)
    used = {}

    def app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        f = path.open("rb")
        f.seek(10)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        wrapper = environ["wsgi.file_wrapper"](f)
        used["type"] = type(wrapper)
        return wrapper  # type: ignore[no-any-return]

    with running(app) as server:
        r = httpx.get(server.url(), timeout=30)
        assert r.content == payload[10:]
        assert r.headers["content-length"] == str(len(payload) - 10)
        # HEAD: the length, no body.
        h = httpx.head(server.url())
        assert h.headers["content-length"] == str(len(payload) - 10)
        assert h.content == b""
    assert used["type"] is FileWrapper
    assert calls, "the body did not go out through os.sendfile"


def test_file_wrapper_with_declared_shorter_length(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"0123456789")

    def app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
        return environ["wsgi.file_wrapper"](path.open("rb"))  # type: ignore[no-any-return]

    with running(app) as server:
        r = httpx.get(server.url())
    assert r.content == b"0123"


def test_streamed_response_is_chunked_and_in_order() -> None:
    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        for i in range(100):
            yield b"%d," % i

    with running(validator(app)) as server:
        r = httpx.get(server.url())
    assert r.text == "".join(f"{i}," for i in range(100))


def test_empty_body_gets_content_length_zero() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return []

    with running(validator(app)) as server:
        r = httpx.get(server.url())
    assert r.headers["content-length"] == "0"


def test_body_timeout_closes_a_stalled_upload() -> None:
    """The body is gathered before the app runs: a stalled one is closed, the app never called."""
    calls: list[str] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        calls.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return []

    with running(app, timeout_body=0.5) as server:
        sock = connect(server)
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly some")
        raw = read_until_closed(sock)
        loop = server._loop
        assert loop is not None
        assert wait_for(lambda: not loop.conns)
    # No response had started: the core's 408, then the close.
    assert raw.startswith(b"HTTP/1.1 408 ")
    assert not calls


def test_client_mistakes_are_logged_without_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("DEBUG", logger="tether"), running(_hello) as server:
        for bad in (
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"GET / HTTP/2.0\r\n\r\n",
        ):
            sock = connect(server)
            sock.sendall(bad)
            assert read_until_closed(sock)[:10] in (b"HTTP/1.1 4", b"HTTP/1.1 5")
    assert not [r for r in caplog.records if r.exc_info or r.levelname == "ERROR"]
