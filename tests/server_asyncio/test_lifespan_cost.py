"""Lifespan must not make requests dearer: a server does the same work per request whether the
application ran lifespan startup or not, and however much it put in the lifespan ``state``.

Counted, not timed: a profile hook in the server's thread counts Python function calls over a
run of requests on one keep-alive connection (Python calls and the builtins they call) (the ticker's periodic calls are the only noise,
hence the small tolerance). The ASGI spec asks for a shallow copy of the state per request;
that copy is one C call whatever the state's size, so it does not show up here.
"""

from __future__ import annotations

import threading
from types import FrameType
from typing import Any

from tests.server_asyncio.conftest import running

REQUESTS = 300
REQUEST = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


def _app(state_entries: int) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    scope["state"].update({f"key{i}": i for i in range(state_entries)})
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
        )
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def _calls_per_request(lifespan: str, state_entries: int) -> float:
    measuring = threading.Event()
    calls = [0]

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if measuring.is_set() and (event == "call" or event == "c_call"):
            calls[0] += 1

    threading.setprofile(profile)  # only the server thread, started next, gets the hook
    try:
        with running(_app(state_entries), "asyncio", lifespan=lifespan) as server:
            threading.setprofile(None)
            with server.connect() as sock:

                def one() -> None:
                    sock.sendall(REQUEST)
                    data = b""
                    while not data.endswith(b"ok"):
                        chunk = sock.recv(4096)
                        assert chunk, "the server closed the connection"
                        data += chunk

                for _ in range(20):  # warm-up: first-request paths, caches
                    one()
                measuring.set()
                for _ in range(REQUESTS):
                    one()
                measuring.clear()
    finally:
        threading.setprofile(None)
    return calls[0] / REQUESTS


def test_lifespan_adds_no_work_per_request() -> None:
    off = _calls_per_request("off", 0)
    on = _calls_per_request("on", 1)
    assert off > 10  # the hook saw the server's work
    assert on <= off * 1.05, (on, off)


def test_work_per_request_does_not_grow_with_lifespan_state() -> None:
    small = _calls_per_request("on", 1)
    large = _calls_per_request("on", 5_000)
    assert large <= small * 1.05, (large, small)
