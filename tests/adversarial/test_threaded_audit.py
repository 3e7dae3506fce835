"""An adversarial audit of ``tether-threaded`` over real sockets on 127.0.0.1 (issue 12's
attacks that ``test_threaded_hostile.py`` and ``tests/server_threaded`` do not make): clients
that half-close, stop reading file downloads or pipeline behind odd responses, and WSGI
applications whose results misbehave as real ones do.

Each server runs in this process on a thread (``tests/server_threaded``'s helper), with small
timeouts where a test waits on one; nothing sleeps to synchronise.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import resource
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.adversarial._servers import tether_threaded
from tests.server_threaded.threaded_helpers import certificate as _certificate
from tests.server_threaded.threaded_helpers import read_head as _head
from tests.server_threaded.threaded_helpers import (
    read_until_closed,
    refuses_connections,
    running,
    wait_for,
)
from tether_threaded import Server
from tether_threaded._transport import Phase

#: The self-signed certificate fixture (``certificate``) of the threaded server tests.
certificate = _certificate

Environ = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], None]]

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
GET_LAST = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def _ok(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


def _connect(server: Server, timeout: float = 5.0) -> socket.socket:
    host, port = server.address[:2]
    return socket.create_connection((host, port), timeout=timeout)


def _exchange(server: Server, data: bytes, *, half_close: bool = False) -> bytes:
    """Send ``data`` on a new connection (then SHUT_WR if asked); all the server sends back."""
    sock = _connect(server)
    sock.sendall(data)
    if half_close:
        sock.shutdown(socket.SHUT_WR)
    return read_until_closed(sock)


def _non_reader(server: Server, request: bytes) -> tuple[socket.socket, int]:
    """A client with a tiny receive buffer that sends ``request``, reads the head, then stops;
    the socket and the body bytes that came with the head."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect(server.address[:2])
    sock.sendall(request)
    head, _, body = _head(sock).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), "the download did not start"
    return sock, len(body)


# -- a worker held by a client that does not read --------------------------------------------


def test_non_readers_of_whole_list_responses_do_not_take_the_worker_threads() -> None:
    """Twice as many clients as threads stop reading a large response the app returned whole
    (a list): the workers hand it to the loop and move on, and another client is answered."""
    big = b"L" * (4 << 20)

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        if environ["PATH_INFO"] == "/big":
            start_response("200 OK", [("Content-Length", str(len(big)))])
            return [big]
        return _ok(environ, start_response)

    with running(app, threads=2) as server, contextlib.ExitStack() as stack:
        for _ in range(4):
            sock, _ = _non_reader(server, b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            stack.enter_context(sock)
        with _connect(server) as sock:
            sock.sendall(GET_LAST)
            assert _head(sock).startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize("kind", ["regular file", "BytesIO"])
def test_non_readers_of_file_downloads_do_not_take_the_worker_threads(
    tmp_path: Path, kind: str
) -> None:
    """As many clients as threads stop reading a ``wsgi.file_wrapper`` download (Flask's
    ``send_file``, Django's ``FileResponse``): another client's GET is still answered. A worker
    used to wait for the client until ``--timeout-write`` (60 s): in ``sendfile``'s wait for a
    writable socket, and in ``write()`` for a file-like that is not a regular file."""
    path = tmp_path / "big.bin"
    size = 8 << 20  # far more than the socket buffers take
    path.write_bytes(b"f" * size)

    def app(environ: Environ, start_response: StartResponse) -> Any:
        if environ["PATH_INFO"] == "/file":
            start_response("200 OK", [("Content-Length", str(size))])
            filelike = path.open("rb") if kind == "regular file" else io.BytesIO(path.read_bytes())
            return environ["wsgi.file_wrapper"](filelike)
        return _ok(environ, start_response)

    with running(app, threads=2, timeout_write=60) as server, contextlib.ExitStack() as stack:
        request = b"GET /file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        stalled = [_non_reader(server, request) for _ in range(2)]
        for sock, _ in stalled:
            stack.enter_context(sock)
        with _connect(server, timeout=5) as sock:
            sock.sendall(GET_LAST)
            assert _head(sock).startswith(b"HTTP/1.1 200 ")
        # A download parked on its full socket goes on, whole, once its client reads.
        sock, received = stalled[0]
        received += len(read_until_closed(sock, limit=2 * size))
    assert received == size


# -- the application's result misbehaves --------------------------------------------------------


class _CloseFails:
    """A streamed result whose body is complete but whose ``close()`` raises (a framework's
    end-of-request hook failing, say)."""

    def __iter__(self) -> Iterator[bytes]:
        yield b"complete"

    def close(self) -> None:
        raise RuntimeError("close() failed")


def test_a_failing_close_after_a_complete_streamed_body_still_ends_the_response() -> None:
    """The body went out whole, so the chunked response gets its last chunk and a pipelined
    request behind it is answered (the last chunk used to be lost with the connection)."""

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/close-fails":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return _CloseFails()
        return _ok(environ, start_response)

    with running(app) as server:
        reply = _exchange(server, b"GET /close-fails HTTP/1.1\r\nHost: x\r\n\r\n" + GET_LAST)
    first, _, rest = reply.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in first
    assert rest.startswith(b"8\r\ncomplete\r\n0\r\n\r\nHTTP/1.1 200 "), reply
    assert rest.endswith(b"ok")


def test_a_failing_close_before_anything_was_sent_is_a_500() -> None:
    """While nothing is committed the failure still becomes a clean 500."""

    class Empty(_CloseFails):
        def __iter__(self) -> Iterator[bytes]:
            return iter(())

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Empty()

    with running(app) as server:
        reply = _exchange(server, GET_LAST)
    assert reply.startswith(b"HTTP/1.1 500 "), reply


def test_a_parked_file_download_is_cut_by_the_write_timeout_and_its_file_closed(
    tmp_path: Path,
) -> None:
    """A client that never reads a file download: the write timeout still fires while the
    response is parked (no worker waits in it), the connection goes, and the file is closed."""
    path = tmp_path / "big.bin"
    path.write_bytes(b"f" * (8 << 20))
    closed: list[bool] = []

    class Tracked(io.FileIO):
        def close(self) -> None:
            closed.append(True)
            super().close()

    def app(environ: Environ, start_response: StartResponse) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](Tracked(path, "rb"))

    with running(app, threads=1, timeout_write=0.5) as server:
        loop = server._loop
        assert loop is not None
        sock, _ = _non_reader(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with sock:
            assert wait_for(lambda: not loop.conns and bool(closed)), "not cut, or file left open"


@pytest.mark.parametrize("length", [None, "100"])
def test_a_result_failing_after_its_first_piece_never_looks_complete(length: str | None) -> None:
    """The iteration raises once the head and a piece are out: the body is cut (no last chunk,
    fewer bytes than the length), the connection closes, and a request pipelined behind it is
    not answered on it, so the client cannot take the cut body for a whole one."""

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        headers = [("Content-Type", "text/plain")]
        if length is not None:
            headers.append(("Content-Length", length))
        start_response("200 OK", headers)
        yield b"first"
        raise RuntimeError("the application broke mid-body")

    with running(app) as server:
        reply = _exchange(server, GET + GET_LAST)
    assert reply.count(b"HTTP/1.1 ") == 1, reply
    assert reply.endswith(b"\r\n\r\n5\r\nfirst\r\n" if length is None else b"\r\n\r\nfirst")


# -- clients that half-close ---------------------------------------------------------------------


def test_a_client_that_half_closes_after_its_requests_gets_every_response() -> None:
    """Pipelined requests with bodies, the last one for a large streamed response that parks
    on the client, then SHUT_WR: every response arrives whole and in order."""

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/stream":
            start_response("200 OK", [("Content-Type", "application/octet-stream")])
            return (b"s" * 65536 for _ in range(64))
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    posts = b"".join(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nbody%02d" % n for n in range(20)
    )
    with running(app) as server:
        reply = _exchange(
            server, posts + b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", half_close=True
        )
    responses = reply.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert len(responses) == 21
    for n, response in enumerate(responses[:20]):
        assert response.endswith(b"\r\n\r\nbody%02d" % n), response
    head, _, chunked = responses[20].partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head
    assert chunked.endswith(b"0\r\n\r\n")
    assert chunked.count(b"s") == 64 * 65536


def test_a_client_that_half_closes_mid_body_gets_400_not_a_truncated_body() -> None:
    """The app never sees a body the client cut short by half-closing."""
    calls: list[str] = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        calls.append(environ["PATH_INFO"])
        return _ok(environ, start_response)

    with running(app) as server:
        reply = _exchange(
            server, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", half_close=True
        )
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert not calls


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_a_last_response_survives_bytes_the_client_sent_after_it(
    tls: bool, certificate: tuple[Path, Path]
) -> None:
    """The client asks for a large answer with ``Connection: close``, then (pipelining, or
    still sending an upload the server refused) sends more bytes the server will not read.
    Closing a socket with unread bytes resets the connection, and the reset destroys what the
    client has not read yet: the server half-closes and drains them first (lingers) over TLS
    as over TCP. Over TLS it used to close at once and cut the answer."""
    big = b"L" * (1 << 20)

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Length", str(len(big)))])
        return [big]

    options: dict[str, Any] = {}
    if tls:
        options = {"ssl_certfile": str(certificate[0]), "ssl_keyfile": str(certificate[1])}
    with running(app, **options) as server:
        loop = server._loop
        assert loop is not None
        sock = _connect(server)
        if tls:
            context = ssl.create_default_context(cafile=str(certificate[0]))
            sock = context.wrap_socket(sock, server_hostname="localhost")
        with sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            head = _head(sock)
            sock.sendall(GET)  # never read by the server: the answer said close
            # The server has handed the whole answer to the kernel and ends the connection.
            assert wait_for(lambda: all(conn.phase is Phase.LINGER for conn in list(loop.conns)))
            received = head.partition(b"\r\n\r\n")[2]
            with contextlib.suppress(ConnectionResetError):
                while piece := sock.recv(1 << 20):
                    received += piece
    assert len(received) == len(big)


def test_running_out_of_descriptors_pauses_accepting_instead_of_spinning(tmp_path: Path) -> None:
    """Clients open more connections than the process may hold descriptors: ``accept`` fails
    with EMFILE while the backlog stays readable. The loop pauses accepting (and says so once
    per pause) instead of retrying and logging an error on every pass (thousands a second),
    and accepts again once descriptors are free."""
    with tether_threaded(tmp_path, "--log-level", "warning") as server:
        fds = len(os.listdir(f"/proc/{server.pid}/fd"))
        resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (fds + 8, fds + 8))
        hogs = [server.connect() for _ in range(20)]  # completed in the backlog, unaccepted
        try:
            assert wait_for(lambda: "accept failed" in server.output())
            # An observation window for a flood, not a synchronisation: it must not come.
            assert not wait_for(lambda: server.output().count("accept failed") > 10, 1.0)
        finally:
            for sock in hogs:
                sock.close()
        with server.connect() as sock:
            sock.sendall(GET_LAST)
            assert _head(sock).startswith(b"HTTP/1.1 200 ")


# -- shutting down -----------------------------------------------------------------------------


@pytest.mark.parametrize("request_body", ["gather", "stream"])
def test_a_body_still_arriving_when_shutdown_begins_is_served_and_the_connection_closed(
    request_body: str,
) -> None:
    """A graceful stop begins while an upload is half sent: the rest still arrives, the app
    gets all of it, and the answer says ``Connection: close``."""

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    with running(app, request_body=request_body) as server, _connect(server) as sock:
        host, port = server.address[:2]
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        server.shutdown(wait=False)

        assert wait_for(lambda: refuses_connections(host, port))  # the drain has begun
        sock.sendall(b"defghij")
        reply = read_until_closed(sock)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"connection: close" in head
    assert body == b"abcdefghij"


# -- responses whose pieces are odd ------------------------------------------------------------


def test_empty_pieces_never_end_a_chunked_body_early() -> None:
    """Empty strings from the iterable and from ``write()`` (before, between and after data)
    send no chunk: a zero-length chunk would end the body, and the rest would read as a
    response the client never asked for."""

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"")
        yield b""
        yield b""
        write(b"one")
        write(b"")
        yield b""
        yield b"two"
        yield b""

    with running(app) as server:
        reply = _exchange(server, GET + GET_LAST)
    first, second = reply.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert first.endswith(b"\r\n\r\n3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n"), first
    assert second.endswith(b"\r\n\r\n3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n"), second


def test_head_answers_leak_no_body_before_a_pipelined_get(tmp_path: Path) -> None:
    """HEAD to a streamed result, to ``write()``, to a file sent with ``sendfile`` and to a
    wrapped file-like:
    no body byte goes out, so the pipelined GET's answer starts right after each head."""
    path = tmp_path / "page.html"
    path.write_bytes(b"F" * 100_000)

    def app(environ: Environ, start_response: StartResponse) -> Any:
        route = environ["PATH_INFO"]
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        if route == "/write":
            write(b"W" * 100_000)
            return []
        if route == "/stream":
            return iter([b"", b"S" * 100_000])
        if route == "/file":
            return environ["wsgi.file_wrapper"](path.open("rb"))
        if route == "/filelike":
            return environ["wsgi.file_wrapper"](io.BytesIO(b"B" * 100_000))
        return [b"ok"]

    heads = b"".join(
        b"HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n" % route
        for route in (b"/stream", b"/write", b"/file", b"/filelike")
    )
    with running(app) as server:
        reply = _exchange(server, heads + GET_LAST)
    assert not [run for run in (b"SSSS", b"WWWW", b"FFFF", b"BBBB") if run in reply], reply
    answers = reply.split(b"HTTP/1.1 200 OK\r\n")
    assert answers[0] == b""
    assert [answer.endswith(b"\r\n\r\n") for answer in answers[1:5]] == [True] * 4
    assert answers[5].endswith(b"\r\n\r\nok")
    # The file's length is declared (a HEAD answer says what a GET would get).
    assert b"content-length: 100000\r\n" in answers[3]


# -- clients that go away --------------------------------------------------------------------------


def test_an_app_that_answers_a_client_gone_meanwhile_logs_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client sends its upload and leaves while the app works: the app still reads the
    whole gathered body, its large answer goes nowhere quietly (no error, no traceback), and
    the connection is freed."""
    client_gone = threading.Event()
    read: list[int] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        assert client_gone.wait(5)
        read.append(len(environ["wsgi.input"].read()))
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (
            (b"x" * 65536 for _ in range(64))
            if environ["PATH_INFO"] == "/gen"
            else [b"x" * (4 << 20)]
        )

    caplog.set_level(logging.DEBUG, logger="tether")
    with running(app) as server:
        loop = server._loop
        assert loop is not None
        for path in (b"/list", b"/gen"):
            client_gone.clear()
            with _connect(server) as sock:
                sock.sendall(
                    b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" % path
                )
            client_gone.set()
            assert wait_for(lambda: not loop.conns)
    assert read == [5, 5]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
