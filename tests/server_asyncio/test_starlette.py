"""A real Starlette application end to end on the anyio server (asyncio and trio).

Routing, a streaming response, a multipart upload parsed by the app (python-multipart), a
WebSocket route and lifespan state, with httpx, curl and the websockets library as clients.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.sync.client import connect

pytestmark = pytest.mark.timeout(60)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    yield {"greeting": "hello from lifespan"}


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.state.greeting)


async def item(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["item_id"], "q": request.query_params.get("q")})


async def numbers(request: Request) -> StreamingResponse:
    async def generate() -> AsyncIterator[bytes]:
        for i in range(100):
            yield b"%d\n" % i

    return StreamingResponse(generate(), media_type="text/plain")


async def upload(request: Request) -> JSONResponse:
    async with request.form() as form:
        upload = form["file"]
        data = await upload.read()  # type: ignore[union-attr]
        return JSONResponse(
            {
                "note": form["note"],
                "filename": upload.filename,  # type: ignore[union-attr]
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )


async def ws_route(websocket: WebSocket) -> None:
    await websocket.accept()
    name = await websocket.receive_text()
    await websocket.send_json({"hello": name, "greeting": websocket.state.greeting})
    await websocket.close(code=1000)


app = Starlette(
    routes=[
        Route("/", home),
        Route("/items/{item_id:int}", item),
        Route("/numbers", numbers),
        Route("/upload", upload, methods=["POST"]),
        WebSocketRoute("/ws", ws_route),
    ],
    lifespan=lifespan,
)


def test_starlette_end_to_end(serve: Any, tmp_path: Any) -> None:
    srv = serve(app, lifespan="on")
    with httpx.Client(base_url=srv.url) as client:
        assert client.get("/").text == "hello from lifespan"
        assert client.get("/items/42?q=x").json() == {"id": 42, "q": "x"}
        assert client.get("/items/nope").status_code == 404
        with client.stream("GET", "/numbers") as response:
            assert response.headers["transfer-encoding"] == "chunked"
            text = b"".join(response.iter_bytes()).decode()
        assert text.splitlines() == [str(i) for i in range(100)]
        payload = bytes(range(256)) * 4000
        response = client.post(
            "/upload", data={"note": "ünïcode"}, files={"file": ("data.bin", payload)}
        )
        assert response.json() == {
            "note": "ünïcode",
            "filename": "data.bin",
            "sha256": hashlib.sha256(payload).hexdigest(),
        }
    with connect(srv.ws_url + "/ws") as ws:
        ws.send("tether")
        assert ws.recv() == '{"hello":"tether","greeting":"hello from lifespan"}'


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_starlette_upload_with_curl(serve: Any, tmp_path: Any) -> None:
    """curl sends `Expect: 100-continue` for large uploads; the server answers it on demand."""
    srv = serve(app, lifespan="on")
    path = tmp_path / "big.bin"
    path.write_bytes(b"\x01\x02\x03" * 700_000)
    out = subprocess.run(
        ["curl", "-sS", "-F", "note=curl", "-F", f"file=@{path}", f"{srv.url}/upload"],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    assert hashlib.sha256(path.read_bytes()).hexdigest().encode() in out
