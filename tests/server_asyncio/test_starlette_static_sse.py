"""Starlette's StaticFiles and a server-sent events stream end to end on the anyio server.

The files go out by ``http.response.pathsend`` (a whole file) or body messages (a range), with
the validators and conditional answers Starlette computes; the event stream is built with
:mod:`tether.sse` and read with its parser, one event at a time, over a real socket with httpx.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tether import sse

pytestmark = pytest.mark.timeout(60)

#: The events the stream sends, as (type, data, id).
EVENTS = [("greeting", "hello", "1"), ("message", "two\nlines", "2"), ("bye", "done", "3")]


def make_app(directory: Path, gates: list[threading.Event]) -> Starlette:
    """StaticFiles at /static and an event stream at /events that sends event n+1 only once
    ``gates[n]`` is set, so the client can only have it if event n reached it on its own."""

    async def events(request: Request) -> StreamingResponse:
        async def generate() -> AsyncIterator[bytes]:
            yield sse.comment("start")
            for n, (kind, data, id_) in enumerate(EVENTS):
                if n:
                    # The test sets the gate from its own thread, after parsing event n-1.
                    assert await anyio.to_thread.run_sync(gates[n - 1].wait, 20)
                yield sse.encode(data, event=None if kind == "message" else kind, id=id_)

        return StreamingResponse(
            generate(),
            headers={k.decode(): v.decode() for k, v in sse.HEADERS},
            media_type="text/event-stream",
        )

    return Starlette(
        routes=[
            Mount("/static", app=StaticFiles(directory=directory)),
            Route("/events", events),
        ]
    )


def test_static_files(serve: Any, tmp_path: Path) -> None:
    """A whole file with its validators, ranges, a 304 for a matching ETag, and a 404."""
    content = bytes(range(256)) * 40
    (tmp_path / "data.bin").write_bytes(content)
    srv = serve(make_app(tmp_path, []))
    with httpx.Client(base_url=srv.url) as client:
        whole = client.get("/static/data.bin")
        assert whole.status_code == 200
        assert whole.content == content
        assert whole.headers["content-length"] == str(len(content))
        assert whole.headers["accept-ranges"] == "bytes"
        etag = whole.headers["etag"]
        assert etag.startswith('"') and etag.endswith('"')
        assert whole.headers["last-modified"].endswith(" GMT")

        part = client.get("/static/data.bin", headers={"Range": "bytes=100-299"})
        assert part.status_code == 206
        assert part.content == content[100:300]
        assert part.headers["content-range"] == f"bytes 100-299/{len(content)}"
        assert part.headers["content-length"] == "200"

        tail = client.get("/static/data.bin", headers={"Range": "bytes=-10"})
        assert tail.status_code == 206
        assert tail.content == content[-10:]

        same = client.get("/static/data.bin", headers={"If-None-Match": etag})
        assert same.status_code == 304
        assert same.content == b""
        assert same.headers["etag"] == etag

        changed = client.get("/static/data.bin", headers={"If-None-Match": '"other"'})
        assert changed.status_code == 200
        assert changed.content == content

        assert client.get("/static/missing.txt").status_code == 404
        # A 304 and a 404 (no body) leave the client's pooled connection usable.
        assert client.get("/static/data.bin").content == content


def test_sse_stream_arrives_event_by_event(serve: Any, tmp_path: Path) -> None:
    """Each event reaches the client as soon as the app sends it, and parses as sent."""
    gates = [threading.Event() for _ in EVENTS[1:]]
    srv = serve(make_app(tmp_path, gates))
    parser = sse.EventStreamParser()
    received: list[sse.Event] = []
    with (
        httpx.Client(base_url=srv.url, timeout=20) as client,
        client.stream("GET", "/events") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        assert response.headers["transfer-encoding"] == "chunked"
        for chunk in response.iter_raw():
            for event in parser.feed(chunk):
                received.append(event)
                # Only now may the app make the next event: a server that held event n
                # back would leave the stream stuck and the app's wait would fail.
                if len(received) <= len(gates):
                    gates[len(received) - 1].set()
    assert [(e.type, e.data, e.last_event_id) for e in received] == EVENTS
