"""An adversarial audit of ``tether serve`` (asyncio and trio, plain TCP and TLS), over real
sockets against a real server subprocess.

Each test stages what a hostile or clumsy client does and checks the outcome a client and an
operator can see: the response it is owed (or the status for its mistake), every other client
still served, and no traceback in the server's log. Attacks already staged elsewhere
(tests/adversarial/test_asyncio_hostile.py, tests/server_asyncio/) are not repeated here.
"""

from __future__ import annotations

import os
import resource
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adversarial._servers import (
    ServerProcess,
    closed_within,
    get,
    have,
    make_certificate,
    tether_serve,
)
from tests.processes import wait_until

BACKENDS = ("asyncio", "trio")

pytestmark = pytest.mark.timeout(60)


def _no_traceback(server: ServerProcess, *, tls: bool = False) -> None:
    """The server is up, answers, and logged nothing a client could have caused."""
    assert (_tls_get(server) if tls else get(server.port)) == (200, b"ok")
    assert server.alive()
    output = server.output()
    assert "Traceback" not in output, output
    assert "ERROR" not in output, output


# -- TLS: a client's end of the stream while the server still has to write ----------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if not have("openssl"):
        pytest.skip("openssl is not installed")
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(params=BACKENDS)
def tls_server(
    request: pytest.FixtureRequest, tmp_path: Path, certificate: tuple[Path, Path]
) -> Iterator[ServerProcess]:
    """``tether serve`` over TLS on each backend."""
    cert, key = certificate
    options = ["--backend", str(request.param), "--ssl-certfile", str(cert)]
    with tether_serve(tmp_path, *options, "--ssl-keyfile", str(key)) as server:
        yield server


def _tls_client(server: ServerProcess) -> ssl.SSLSocket:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context.wrap_socket(server.connect(), server_hostname="127.0.0.1")


def _tls_get(server: ServerProcess) -> tuple[int, bytes]:
    """``get`` over TLS: one ``GET /`` with ``Connection: close``, its status and body."""
    with _tls_client(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_tls_tcp_half_close_mid_body_is_not_an_application_error(
    tls_server: ServerProcess,
) -> None:
    """A TLS client whose TCP FIN (no close_notify) comes in the middle of a body: the server's
    SSL object then refuses to write, and anyio's TLS stream says so with ``EndOfStream`` from
    ``send``. That is the client gone, not an exception for the application (which was logged
    with a traceback, "exception in ASGI application; answering 500")."""
    sock = _tls_client(tls_server)
    sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
    # SSLSocket.shutdown() drops the TLS layer and half-closes the TCP socket: a FIN without a
    # close_notify, as a client that crashes or a middlebox sends.
    sock.shutdown(socket.SHUT_WR)
    assert closed_within(sock, 10)
    sock.close()
    _no_traceback(tls_server, tls=True)


# -- pipelining behind responses whose application listens for http.disconnect ------------------

#: ``/listen`` streams three events while a task waits for ``http.disconnect`` (Starlette's
#: StreamingResponse, server-sent events); everything else answers "ok".
LISTENING_APP = """
import anyio

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] != "/listen":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    async with anyio.create_task_group() as group:
        async def listen():
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

        group.start_soon(listen)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for n in range(3):
            await send({"type": "http.response.body", "body": b"e%d;" % n, "more_body": True})
            await anyio.sleep(0.002)  # a turn for the listener: it reads the pipelined bytes
        await send({"type": "http.response.body", "body": b""})
        group.cancel_scope.cancel()
"""


def _read_all(sock: socket.socket, deadline: float = 20.0) -> bytes:
    """Everything the server sends until it closes (bounded by ``deadline`` seconds)."""
    sock.settimeout(deadline)
    out = b""
    try:
        while chunk := sock.recv(1 << 20):
            out += chunk
    except ConnectionResetError:
        out += b"<reset>"
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_pipelined_requests_behind_listening_streams_are_all_answered(
    backend: str, tmp_path: Path
) -> None:
    """A client pipelines 40 valid requests (8 KB each, 330 KB in all) to a streaming endpoint
    whose app listens for ``http.disconnect``, reading the responses as they come. Each wait for
    a disconnect read up to half the core's pipelining buffer afresh, on top of what earlier
    waits had left there, so the second wait overflowed the buffer: the server took that for a
    broken client and cut the second response (a reset); the other 39 were lost."""
    count = 40
    pad = b"X-Pad: " + b"p" * 8000 + b"\r\n"
    wire = b"GET /listen HTTP/1.1\r\nHost: x\r\n" + pad + b"\r\n"
    last = b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with tether_serve(tmp_path, "--backend", backend, app=LISTENING_APP) as server:
        sock = server.connect()
        # Read while sending (a thread): the client takes every response as it comes.
        received: list[bytes] = []
        reader = threading.Thread(target=lambda: received.append(_read_all(sock)))
        reader.start()
        sock.sendall(wire * count + last)
        reader.join(30)
        sock.close()
        data = received[0] if received else b""
        assert data.count(b"e0;\r\n3\r\ne1;\r\n3\r\ne2;\r\n0\r\n\r\n") == count, data[-300:]
        assert data.endswith(b"\r\n\r\nok"), data[-300:]
        _no_traceback(server)


# -- a send the application cancels half-way ---------------------------------------------------

#: Streams 1 MB chunks, each send under a 0.2 s timeout (an app that gives up on a slow client,
#: or a framework cancelling a stream); writes ``cancelled`` in its directory when one is cut.
CANCELLING_APP = """
import anyio

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for n in range(4):
        with anyio.move_on_after(0.2) as timer:
            chunk = bytes([65 + n]) * 1_000_000
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if timer.cancelled_caught:
            open("cancelled", "w").close()
    await send({"type": "http.response.body", "body": b"END"})
"""


def _chunked_framing_is_sound(body: bytes) -> bool:
    """Whether ``body`` is chunked framing, complete or cut short (a closed connection), but
    never with a chunk whose data is not followed by CRLF or a size line that is not hex."""
    pos = 0
    while True:
        end = body.find(b"\r\n", pos)
        if end < 0:
            return True  # cut short: the client sees a truncated response, not a wrong one
        size = int(body[pos:end], 16)  # ValueError: a corrupted size line
        if size == 0:
            return True
        after = end + 2 + size
        if len(body) < after + 2:
            return True
        if body[after : after + 2] != b"\r\n":
            return False
        pos = after + 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_send_cancelled_half_way_never_corrupts_the_response(
    backend: str, tmp_path: Path
) -> None:
    """The app's timeout cancels a send while a slow client holds the rest of a chunk back.
    On trio the stream had written part of the chunk and dropped the rest, and the next send
    framed a new chunk after it: the client read a chunk of the wrong length, then garbage as
    a size line. A cut write must end the response (a truncated one), never corrupt it."""
    with tether_serve(tmp_path, "--backend", backend, app=CANCELLING_APP) as server:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        # Not a byte read until the app has cut a send (bounded wait for its marker file).
        marker = tmp_path / "cancelled"
        deadline = time.monotonic() + 10
        while not marker.exists():
            assert time.monotonic() < deadline, "no send was cancelled"
            time.sleep(0.02)  # polling a file: there is no event to wait on
        # Now read fast: a larger buffer opens the window (4 KiB of it made reading slow).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        data = _read_all(sock)
        sock.close()
        head, _, body = data.partition(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head, head
        assert _chunked_framing_is_sound(body), body[-100:]
        assert server.alive()
        assert "Traceback" not in server.output()


# -- a receive the application cancels ------------------------------------------------------------

#: Reads the body with receives that must not wait (each in a scope cancelled beforehand, as
#: Starlette's ``Request.is_disconnected()`` polls), retrying when one is cancelled; answers
#: with the body's size and whether it ended. Gives up after 2 s (a body that never ends).
POLLING_APP = """
import anyio

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    size, more = 0, True
    with anyio.move_on_after(2):
        while more:
            with anyio.CancelScope() as poll:
                poll.cancel()
                message = await receive()
            if poll.cancelled_caught:
                await anyio.sleep(0.001)  # nothing ready: poll again
                continue
            if message["type"] != "http.request":
                return
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
    body = b"%d %s" % (size, b"more" if more else b"end")
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cancelled_receive_loses_no_body_bytes(backend: str, tmp_path: Path) -> None:
    """A receive cancelled by the app's scope must leave the bytes it did not deliver for the
    next one. On trio the stream read the socket and then yielded (every 256 KiB read) before
    returning: cancelled there, the bytes it had taken were dropped, so the 1 MiB body came up
    short by 64 KiB pieces and never ended."""
    body = bytes(range(256)) * 4096
    with tether_serve(tmp_path, "--backend", backend, app=POLLING_APP) as server:
        with server.connect(timeout=10) as sock:
            head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % len(body)
            sock.sendall(head + b"Connection: close\r\n\r\n" + body)
            data = _read_all(sock)
        assert data.endswith(b"\r\n\r\n%d end" % len(body)), data[-100:]
        assert server.alive()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_body_timeout_fires_for_an_app_that_polls(backend: str, tmp_path: Path) -> None:
    """``--timeout-body`` is the server's: it must fire when the client stalls mid-body even
    if the app's receives are cancelled before they can wait (polling). The body deadline was
    noticed only by the read's own cancel scope, which never caught a cancellation while the
    app's was pending: the stalled body held the app until its own bound (here 2 s), and no
    408 was sent."""
    options = ("--backend", backend, "--timeout-body", "0.3")
    with tether_serve(tmp_path, *options, app=POLLING_APP) as server:
        with server.connect(timeout=10) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
            data = _read_all(sock)
        assert data.startswith(b"HTTP/1.1 408 "), data[-100:]
        assert server.alive()
        output = server.output()
        assert "Traceback" not in output and "ERROR" not in output, output


@pytest.mark.parametrize("backend", BACKENDS)
def test_running_out_of_descriptors_pauses_accepting_instead_of_flooding_the_log(
    backend: str, tmp_path: Path
) -> None:
    """``accept`` fails with EMFILE while the backlog stays readable: the server pauses for a
    second and says so once, rather than retrying (and logging) ten times a second, and
    accepts again once descriptors are free."""
    with tether_serve(tmp_path, "--backend", backend, "--log-level", "warning") as server:
        # Serving, not only listening: the socket is bound before the event loop exists.
        assert get(server.port) == (200, b"ok")
        fds = len(os.listdir(f"/proc/{server.pid}/fd"))
        resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (fds + 4, fds + 4))
        hogs = [server.connect() for _ in range(12)]  # completed in the backlog, unaccepted
        try:
            assert wait_until(lambda: "accept failed" in server.output(), 10)
            # An observation window for a flood, not a synchronisation: it must not come.
            assert not wait_until(lambda: server.output().count("accept failed") > 3, 1.5)
        finally:
            for sock in hogs:
                sock.close()
        assert wait_until(lambda: get(server.port) == (200, b"ok"), 10)
