"""Slow clients: 200 connections trickling one byte a second do not stop normal clients being
served, and each is answered 408 and closed at the head deadline."""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

import httpx
from threaded_helpers import read_until_closed, running, wait_for

SLOW = 200
#: The head these clients would send, if they lived long enough: ~40 bytes, ~40 seconds.
HEAD = b"GET /slow HTTP/1.1\r\nHost: example.org\r\n\r\n"
HEAD_TIMEOUT = 2.0


def _app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["PATH_INFO"].encode()]


def test_slow_clients_do_not_block_others_and_are_closed_at_the_head_deadline() -> None:
    with running(_app, threads=4, timeout_request_head=HEAD_TIMEOUT) as server:
        host, port = server.address[:2]
        slow = [socket.create_connection((host, port), timeout=30) for _ in range(SLOW)]
        stop = threading.Event()

        def trickle() -> None:
            # One byte per second on every connection (the pacing is the scenario, not a sync).
            for index in range(len(HEAD)):
                for sock in slow:
                    with contextlib.suppress(OSError):  # the server closed it
                        sock.send(HEAD[index : index + 1])
                if stop.wait(1.0):
                    return

        driver = threading.Thread(target=trickle)
        driver.start()
        try:
            with httpx.Client(base_url=server.url(), timeout=10) as client:
                for i in range(50):
                    r = client.get(f"/fast{i}")
                    assert r.status_code == 200
                    assert r.text == f"/fast{i}"
            answers = [read_until_closed(sock) for sock in slow]
        finally:
            stop.set()
            driver.join(10)
            for sock in slow:
                sock.close()
        # Every slow client got the 408 long before its head could have been complete.
        assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), {a[:20] for a in answers}
        loop = server._loop
        assert loop is not None
        assert wait_for(lambda: not loop.conns)
