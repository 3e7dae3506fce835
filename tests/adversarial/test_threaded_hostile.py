"""Attacks on ``tether-threaded``, each test named after what it stops (issue 12).

Most run the server as a user does, ``python -m tether_threaded``, in a subprocess (so memory
is the server's own); the ones that need to see inside (the timer heap, a slow disk) run it in
this process on a thread. Every test is bounded to a few seconds by small timeouts.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tether.serving_wsgi as serving_wsgi
import tether_threaded._wsgi as wsgi_module
from tests.server_threaded.threaded_helpers import read_head as _head
from tests.server_threaded.threaded_helpers import running
from tether_threaded import Config, FileWrapper, Server
from tether_threaded._connection import Connection
from tether_threaded._loop import Loop

Environ = dict[str, Any]

#: The WSGI app the subprocess tests attack. ``/upload`` reads the body and tells its size;
#: ``/stream`` streams 50 MB; ``/big`` answers 200 KB at once; a WebSocket upgrade echoes;
#: anything else answers "ok".
HOSTILE_APP = """
from tether_threaded import WebSocketClosed

CHUNK = b"x" * 65536


def app(environ, start_response):
    upgrade = environ.get("tether.websocket")
    if upgrade is not None:
        ws = upgrade.accept()
        try:
            while True:
                ws.send(ws.receive())
        except WebSocketClosed:
            pass
        return []
    path = environ["PATH_INFO"]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (CHUNK for _ in range(800))
    if path == "/big":
        start_response("200 OK", [("Content-Length", "200000")])
        return [b"b" * 200000]
    out = str(len(environ["wsgi.input"].read())).encode() if path == "/upload" else b"ok"
    start_response("200 OK", [("Content-Length", str(len(out)))])
    return [out]
"""

# -- helpers (small, until tests/adversarial/_servers.py is shared) ------------------------------


class _Process:
    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self.proc = proc
        self.port = port

    def connect(self, timeout: float = 5.0) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _server(tmp_path: Path, *options: str) -> Iterator[_Process]:
    """``python -m tether_threaded app:app`` on a free port with ``options``; killed after."""
    (tmp_path / "app.py").write_text(HOSTILE_APP)
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]))
    command = [sys.executable, "-m", "tether_threaded", "app:app", "--port", str(port)]
    command += ["--no-access-log", "--log-level", "warning", *options]
    with (tmp_path / "server.log").open("wb") as log:
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=log)
    try:
        end = time.monotonic() + 15
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < end, "the server did not start listening"
                time.sleep(0.05)  # polling a port for readiness: there is no event to wait on
        yield _Process(proc, port)
    finally:
        proc.kill()
        proc.wait(10)


def _in_process(app: Any, **options: Any) -> contextlib.AbstractContextManager[Server]:
    """An in-process server with 2 threads (tests/server_threaded's helper)."""
    options.setdefault("threads", 2)
    return running(app, **options)


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0, every: float = 0.01) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes (bounded, not a sleep-sync)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(every)
    return condition()


def _get_within(connect: Callable[[float], socket.socket], seconds: float) -> bytes:
    """A plain GET on a new connection; its answer (the socket times out after ``seconds``)."""
    with connect(seconds) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return _head(sock)


def _websocket(proc: _Process) -> socket.socket:
    """A raw WebSocket connection that completed its handshake."""
    sock = proc.connect()
    sock.sendall(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = _head(sock)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock


def _app(environ: Environ, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


# -- 1. a handful of slow clients stops all HTTP service -----------------------------------------

THREADS = 2


def test_slow_bodies_do_not_take_the_worker_threads(tmp_path: Path) -> None:
    """THREADS + 1 uploads stalled mid-body, to an app that reads the body: a GET is answered."""
    with _server(tmp_path, "--threads", str(THREADS)) as server:
        slow = [server.connect() for _ in range(THREADS + 1)]
        try:
            for sock in slow:
                sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nx")
            assert _get_within(server.connect, 1.0).startswith(b"HTTP/1.1 200 ")
            for sock in slow:  # the uploads still complete
                sock.sendall(b"y" * 999)
                assert _head(sock).startswith(b"HTTP/1.1 200 ")
        finally:
            for sock in slow:
                sock.close()


def test_idle_websockets_do_not_take_the_worker_threads(tmp_path: Path) -> None:
    """THREADS + 1 open WebSockets whose clients say nothing: a GET is answered."""
    with _server(tmp_path, "--threads", str(THREADS)) as server:
        sessions = [_websocket(server) for _ in range(THREADS + 1)]
        try:
            assert _get_within(server.connect, 1.0).startswith(b"HTTP/1.1 200 ")
        finally:
            for sock in sessions:
                sock.close()


def test_websockets_past_their_limit_are_refused_503(tmp_path: Path) -> None:
    with _server(tmp_path, "--threads", "1", "--limit-websockets", "2") as server:
        sessions = [_websocket(server) for _ in range(2)]
        try:
            with server.connect() as extra:
                extra.sendall(
                    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    b"Sec-WebSocket-Version: 13\r\n\r\n"
                )
                assert _head(extra).startswith(b"HTTP/1.1 503 ")
            assert _get_within(server.connect, 1.0).startswith(b"HTTP/1.1 200 ")
        finally:
            for sock in sessions:
                sock.close()


# -- 2. a ping flood from a client that never reads ----------------------------------------------

#: A masked ping with a 125-byte payload (mask 0, so the payload is as sent).
PING = b"\x89\xfd\x00\x00\x00\x00" + b"p" * 125


def test_ping_flood_from_a_client_that_never_reads_stays_small_and_is_closed(
    tmp_path: Path,
) -> None:
    with _server(tmp_path, "--timeout-write", "3") as server:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(15)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assert _head(sock).startswith(b"HTTP/1.1 101 ")
        before = server.rss_kb()
        closed = threading.Event()
        burst = PING * 512

        def flood() -> None:
            try:
                while True:
                    sock.sendall(burst)
            except OSError:
                closed.set()  # reset by the server (or our timeout, which the assert catches)

        flooder = threading.Thread(target=flood, daemon=True)
        flooder.start()
        peak = before
        end = time.monotonic() + 10
        while not closed.is_set() and time.monotonic() < end:
            peak = max(peak, server.rss_kb())
            closed.wait(0.05)
        sock.close()
        flooder.join(15)
    assert closed.is_set(), "the write timeout did not close the flooding client"
    # (The old server grew by 25 to 55 MB here before the write timeout; ours by < 1 MB.)
    assert peak - before < 10 * 1024, f"RSS grew by {(peak - before) // 1024} MB"


# -- 3. a client that never reads a large response -----------------------------------------------


def test_unread_response_is_cut_by_the_write_timeout_and_frees_its_slot(tmp_path: Path) -> None:
    options = ("--threads", "1", "--limit-concurrency", "1", "--timeout-write", "1")
    with _server(tmp_path, *options) as server:
        reader = socket.socket()
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.connect(("127.0.0.1", server.port))
        with reader:
            reader.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _head(reader).startswith(b"HTTP/1.1 200 ")  # then it reads no more
            assert _get_within(server.connect, 5.0).startswith(b"HTTP/1.1 503 ")  # the slot
            # The slot frees once the write timeout cuts the non-reading client.
            assert _wait_for(
                lambda: _get_within(server.connect, 5.0).startswith(b"HTTP/1.1 200 "), 8, 0.1
            )


def test_non_readers_of_streamed_responses_do_not_take_the_worker_threads(tmp_path: Path) -> None:
    """More non-reading clients of a streamed (generator) response than threads: a plain GET
    from another client is still answered within a second (found by bench/soak.py: a worker
    used to wait in its write until --timeout-write, 60 s by default)."""
    with _server(tmp_path, "--threads", "2") as server:
        readers = []
        try:
            for _ in range(3):
                reader = socket.socket()
                reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                reader.connect(("127.0.0.1", server.port))
                reader.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")  # never read
                readers.append(reader)
            started = time.monotonic()
            assert _get_within(server.connect, 5.0).startswith(b"HTTP/1.1 200 ")
            assert time.monotonic() - started < 1.0
        finally:
            for reader in readers:
                reader.close()


def test_pipelining_client_that_never_reads_does_not_take_a_worker(tmp_path: Path) -> None:
    """A client pipelines requests for large answers and reads none: once its unread output is
    above the high-water mark its next request waits in the loop, not in a worker's write."""
    with _server(tmp_path, "--threads", "1", "--timeout-write", "30") as server:
        hog = socket.socket()
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hog.connect(("127.0.0.1", server.port))
        with hog:
            hog.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n" * 40)
            answers = [_get_within(server.connect, 2.0) for _ in range(3)]
    assert all(answer.startswith(b"HTTP/1.1 200 ") for answer in answers), answers


# -- 4. a body sent too slowly -------------------------------------------------------------------


# The stalled and trickled bodies are attacked in test_asyncio_hostile.py, on every server.


def test_upload_past_the_gathering_cap_is_413_not_a_full_disk() -> None:
    """Without --limit-request-body the loop still gathers at most max_gathered_body bytes."""
    calls: list[str] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        calls.append(environ["PATH_INFO"])
        return _app(environ, start_response)

    with _in_process(app, max_gathered_body=100_000) as server:
        host, port = server.address[:2]
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n")
            assert _head(sock).startswith(b"HTTP/1.1 413 ")  # before any of the body
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            with contextlib.suppress(OSError):  # the server may close while we still send
                for _ in range(10):
                    sock.sendall(b"4e20\r\n" + b"c" * 20000 + b"\r\n")
            assert _head(sock).startswith(b"HTTP/1.1 413 ")
    assert not calls


# -- 5. blocking work on the I/O thread ----------------------------------------------------------


def test_slow_disk_read_in_sendfile_does_not_stall_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker's sendfile waits on a cold disk while its client sends more bytes: the loop
    still serves everyone else (it used to wait for the worker's lock on that connection)."""
    path = tmp_path / "big"
    path.write_bytes(b"z" * (4 << 20))
    in_sendfile = threading.Event()
    disk_ready = threading.Event()
    real_sendfile = os.sendfile

    def cold_disk(*args: Any) -> int:
        if not in_sendfile.is_set():
            in_sendfile.set()
            disk_ready.wait(5)  # the first read waits on the disk
        return real_sendfile(*args)

    monkeypatch.setattr(os, "sendfile", cold_disk)

    def app(environ: Environ, start_response: Any) -> Any:
        if environ["PATH_INFO"] == "/file":
            start_response("200 OK", [("Content-Type", "application/octet-stream")])
            return FileWrapper(path.open("rb"))
        return _app(environ, start_response)

    with _in_process(app) as server:
        host, port = server.address[:2]
        with socket.create_connection((host, port), timeout=10) as first:
            first.sendall(b"GET /file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert in_sendfile.wait(5)
            first.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # an event for that connection
            try:
                answer = _get_within(
                    lambda t: socket.create_connection((host, port), timeout=t), 2.0
                )
            finally:
                disk_ready.set()
            received = 0
            while piece := first.recv(1 << 20):
                received += len(piece)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert received > 4 << 20


# -- 6. error paths ------------------------------------------------------------------------------


@contextlib.contextmanager
def _bare_loop(**options: Any) -> Iterator[Loop]:
    loop = Loop(_app, Config(**options), [], None)
    try:
        yield loop
    finally:
        loop.selector.close()
        loop._wake_r.close()
        loop._wake_w.close()


def _reset_peer_connection(loop: Loop) -> Connection:
    """A connection over a real socket whose client is already gone."""
    ours, theirs = socket.socketpair()
    theirs.close()
    ours.setblocking(False)
    conn = Connection(loop, ours, {"wsgi.url_scheme": "http"}, "gone", time.monotonic())
    loop.conns.add(conn)
    return conn


def test_client_gone_before_the_503_is_a_quiet_close() -> None:
    with _bare_loop(limit_concurrency=0) as loop:
        conn = _reset_peer_connection(loop)
        now = time.monotonic()
        with conn.lock:
            conn.core.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", now)
            conn.pump(now)  # answers 503 into a dead socket: ClientDisconnected escaped here
        assert conn.closing


def test_client_gone_before_the_408_is_a_quiet_close() -> None:
    with _bare_loop() as loop:
        conn = _reset_peer_connection(loop)
        now = time.monotonic()
        with conn.lock:
            conn.core.receive_data(b"GET / HT", now)
            conn.pump(now)
            conn.on_timer(now + 3600)  # the head timeout's 408 goes into a dead socket
        assert conn.closing


def test_system_exit_from_the_app_still_answers_and_frees_the_connection() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/exit":
            raise SystemExit(3)
        return _app(environ, start_response)

    with _in_process(app) as server:
        host, port = server.address[:2]
        with socket.create_connection((host, port), timeout=3) as sock:
            sock.sendall(b"GET /exit HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _head(sock).startswith(b"HTTP/1.1 500 ")
        loop = server._loop
        assert loop is not None
        assert _wait_for(lambda: not loop.conns)


def test_failed_loop_set_up_does_not_leak_the_listening_socket() -> None:
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = open_fds()
    servers = [Server(_app, Config(port=0, limit_connections=0)) for _ in range(5)]
    for server in servers:  # kept, as an application that retries would keep its server
        with pytest.raises(ValueError):
            server.bind()
    assert open_fds() == before


def test_closed_connections_leave_the_timer_heap_promptly() -> None:
    """Each connection arms a 30 s keep-alive timer; once they close, the heap lets go of them
    (it used to hold every closed connection until its deadline)."""
    with _in_process(_app, timeout_keep_alive=30) as server:
        host, port = server.address[:2]
        clients = [socket.create_connection((host, port), timeout=5) for _ in range(100)]
        for sock in clients:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        for sock in clients:
            assert _head(sock).startswith(b"HTTP/1.1 200 ")
            sock.close()
        loop = server._loop
        assert loop is not None
        assert _wait_for(lambda: not loop.conns)
        assert _wait_for(lambda: not [e for e in list(loop._timers) if e[2].closed], 2)


# -- 8. many idle keep-alive connections -------------------------------------------------------


def test_idle_keep_alive_connections_stay_small(tmp_path: Path) -> None:
    """2000 connections that each completed a request and stay open cost <= 2.5 KiB each
    (about 2.2 measured; 3.0 before a connection made its Condition only when a thread first
    waits on it)."""
    count = 2000

    def open_idle(n: int) -> list[socket.socket]:
        socks: list[socket.socket] = []
        while len(socks) < n:
            # In batches: more requests at once than the admission queue holds get 503.
            batch = [server.connect() for _ in range(min(200, n - len(socks)))]
            for sock in batch:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            for sock in batch:
                assert _head(sock).startswith(b"HTTP/1.1 200 ")  # (the body is in the piece)
            socks += batch
        return socks

    with _server(tmp_path, "--timeout-keep-alive", "60") as server:
        warm = open_idle(200)  # allocator pools and threads warmed up first
        before = server.rss_kb()
        idle = open_idle(count)
        after = server.rss_kb()
        for sock in warm + idle:
            sock.close()
    per_connection = (after - before) * 1024 / count
    assert per_connection <= 2.5 * 1024, f"{per_connection:.0f} bytes per idle connection"


# -- 7. no state shared between clients (issue 13) ----------------------------------------------


def test_no_process_wide_table_learns_from_requests() -> None:
    """Header names, header values and status lines of one client leave nothing behind in the
    WSGI modules (the server's and the core's) for the next one (the memo tables used to keep the first values ever seen)."""

    def tables() -> dict[str, int]:
        return {
            f"{module.__name__}.{name}": len(value)
            for module in (wsgi_module, serving_wsgi)
            for name, value in vars(module).items()
            if isinstance(value, dict | set | list)
        }

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        secret = environ.get("HTTP_X_SECRET_" + environ["QUERY_STRING"], "")
        start_response(
            f"200 OK {secret}", [("Set-Cookie", f"session={secret}"), ("Content-Length", "2")]
        )
        return [b"ok"]

    before = tables()
    with _in_process(app) as server:
        host, port = server.address[:2]
        for n in range(40):
            with socket.create_connection((host, port), timeout=5) as sock:
                sock.sendall(
                    b"GET /?%d HTTP/1.1\r\nHost: x\r\nX-Secret-%d: s%d\r\n\r\n" % (n, n, n)
                )
                assert _head(sock).startswith(b"HTTP/1.1 200 ")
    assert tables() == before
