"""A client that reads a response slowly but steadily is cut by ``--min-write-rate``.

A reader that stops is caught by ``--timeout-write`` (tests/adversarial/test_*_hostile.py). One
that takes a little every fraction of a second never goes that long without progress, so
without a minimum rate it holds its connection, and the app's response, for as long as the
response lasts (:mod:`tether.serving_pace`). Here each server streams an endless body to a
client that reads 64 KiB ten times a second (about 640 KB/s at most), with a write timeout of
2 s and a minimum of 4 MB/s: the server must give up on it, and say why in its log. The same
server sends a long response whole to a client that reads as fast as it can: the rate is a
floor for slow readers, not a cost for others. What the client took is TCP's count of the
bytes it acknowledged (``tether_server.tcpinfo``), so the kernel's send buffer, megabytes on
loopback, does not hide its progress.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from tests.processes import RUNNING, LogLines, free_port, reaped, spawn_server

ASGI = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    chunks = int(scope["query_string"] or b"0") or 1_000_000
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(chunks * 65536).encode())]})
    chunk = b"x" * 65536
    for _ in range(chunks):
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
"""

WSGI = """
def app(environ, start_response):
    if environ["PATH_INFO"] == "/file":  # os.sendfile, past the queue the loop watches
        start_response("200 OK", [("Content-Length", str(64 << 20))])
        return environ["wsgi.file_wrapper"](open("big.bin", "rb"))
    chunks = int(environ["QUERY_STRING"] or "0") or 1_000_000
    start_response("200 OK", [("Content-Length", str(chunks * 65536))])
    chunk = b"x" * 65536
    return (chunk for _ in range(chunks))
"""

OPTIONS = ("--timeout-write", "2", "--min-write-rate", "4000000", "--log-level", "debug")


def _request(port: int, query: str, rcvbuf: int, path: str = "/") -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path}?{query} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    return sock


def _trickle(sock: socket.socket, stop: threading.Event, ended: list[str]) -> None:
    """Read 64 KiB ten times a second until told to stop or the stream ends (noting how in
    ``ended``). The pause is the attack (a slow reader), not a wait for something to happen."""
    with sock:
        while not stop.is_set():
            try:
                if not sock.recv(65536):
                    ended.append("end of stream")
                    return
            except ConnectionResetError:
                ended.append("reset")
                return
            stop.wait(0.1)


def _trickle_until_cut(port: int, path: str, log: LogLines) -> list[str]:
    """Trickle-read ``path`` until the server logs that it gave up on the client as too slow,
    then until the connection ends (bounded); how it ended."""
    stop = threading.Event()
    ended: list[str] = []
    reader = threading.Thread(target=_trickle, args=(_request(port, "", 65536, path), stop, ended))
    reader.start()
    try:
        log.wait_for("the client reads slower than 4e+06 bytes/s", timeout=60)
        # The server resets the connection (SO_LINGER 0): the megabytes queued in its kernel
        # for this client are dropped, not sent on at the client's pace.
        reader.join(30)
    finally:
        stop.set()
        reader.join(30)
    return ended


@pytest.mark.parametrize("server", ["asyncio", "trio", "threaded"])
def test_a_steady_trickle_is_cut_and_a_fast_reader_is_not(tmp_path: Path, server: str) -> None:
    port = free_port()
    proc = spawn_server(server, tmp_path, (ASGI, WSGI), "--port", str(port), *OPTIONS)
    with reaped(proc):
        log = LogLines(proc)
        log.wait_for(RUNNING)
        # Without the rate it would stream for a million chunks: 64 GB at 640 KB/s.
        assert _trickle_until_cut(port, "/", log) == ["reset"]
        assert "no write progress" not in log.text  # progress came every tenth of a second
        # 40 MiB to a client that reads as fast as it can: all of it.
        with _request(port, "640", 1 << 20) as sock:
            received = 0
            started = time.monotonic()
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
                if b"\r\n\r\n" in chunk[:512] and received == len(chunk):
                    received -= chunk.index(b"\r\n\r\n") + 4  # the head
                if received >= 640 * 65536:
                    break
            assert received == 640 * 65536, time.monotonic() - started


def test_a_trickle_of_a_file_sent_with_sendfile_is_cut(tmp_path: Path) -> None:
    """tether-threaded sends a ``wsgi.file_wrapper`` file with ``os.sendfile`` from a worker,
    parked while the socket is full: what the client took is still TCP's count."""
    (tmp_path / "big.bin").write_bytes(bytes(64 << 20))
    port = free_port()
    proc = spawn_server("threaded", tmp_path, (ASGI, WSGI), "--port", str(port), *OPTIONS)
    with reaped(proc):
        log = LogLines(proc)
        log.wait_for(RUNNING)
        assert _trickle_until_cut(port, "/file", log) == ["reset"]
