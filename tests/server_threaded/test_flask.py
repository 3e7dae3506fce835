"""A real Flask application end to end: routing, streaming, upload, send_file with Range."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import flask
import httpx
import pytest
from threaded_helpers import running


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "blob.bin"
    path.write_bytes(os.urandom(2 * 1024 * 1024 + 123))
    return path


def make_app(blob: Path) -> flask.Flask:
    app = flask.Flask("tether_threaded_test")

    @app.get("/")
    def index() -> str:
        return "index"

    @app.get("/items/<int:item>")
    def item(item: int) -> dict[str, object]:
        return {"item": item, "q": flask.request.args.get("q")}

    @app.get("/stream")
    def stream() -> flask.Response:
        def generate() -> Iterator[str]:
            for i in range(50):
                yield f"line {i}\n"

        return flask.Response(generate(), mimetype="text/plain")

    @app.post("/upload")
    def upload() -> dict[str, object]:
        files = flask.request.files
        out: dict[str, object] = {"field": flask.request.form.get("field")}
        for name, storage in files.items():
            data = storage.read()
            out[name] = {
                "filename": storage.filename,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        return out

    @app.get("/file")
    def file() -> flask.Response:
        return flask.send_file(blob, mimetype="application/octet-stream", conditional=True)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("a bug in the view")

    return app


def test_flask_routing_json_and_404(payload: Path) -> None:
    with running(make_app(payload)) as server, httpx.Client(base_url=server.url()) as client:
        assert client.get("/").text == "index"
        assert client.get("/items/42", params={"q": "a b"}).json() == {"item": 42, "q": "a b"}
        assert client.get("/items/nope").status_code == 404
        assert client.post("/").status_code == 405
        assert client.get("/boom").status_code == 500
        # The connection survived all of that (keep-alive).
        assert client.get("/").text == "index"


def test_flask_streaming_response(payload: Path) -> None:
    with running(make_app(payload)) as server, httpx.stream("GET", server.url() + "/stream") as r:
        assert r.headers["transfer-encoding"] == "chunked"
        lines = list(r.iter_lines())
    assert lines == [f"line {i}" for i in range(50)]


def test_flask_file_upload(payload: Path) -> None:
    data = payload.read_bytes()
    with running(make_app(payload)) as server:
        r = httpx.post(
            server.url() + "/upload",
            data={"field": "value"},
            files={"doc": ("blob.bin", data, "application/octet-stream")},
            timeout=30,
        )
    assert r.status_code == 200
    assert r.json() == {
        "field": "value",
        "doc": {
            "filename": "blob.bin",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        },
    }


def test_flask_send_file_whole_and_ranges(payload: Path) -> None:
    data = payload.read_bytes()
    with running(make_app(payload)) as server, httpx.Client(base_url=server.url()) as client:
        whole = client.get("/file")
        assert whole.status_code == 200
        assert whole.content == data
        assert whole.headers["accept-ranges"] == "bytes"

        part = client.get("/file", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.content == data[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"

        tail = client.get("/file", headers={"Range": "bytes=-10"})
        assert tail.status_code == 206
        assert tail.content == data[-10:]

        bad = client.get("/file", headers={"Range": f"bytes={len(data) + 5}-"})
        assert bad.status_code == 416

        etag = whole.headers["etag"]
        again = client.get("/file", headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""

        head = client.head("/file")
        assert head.headers["content-length"] == str(len(data))
        assert head.content == b""


def test_flask_with_curl(payload: Path) -> None:
    import shutil
    import subprocess

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    with running(make_app(payload)) as server:
        out = subprocess.run(
            ["curl", "-sS", "--max-time", "10", "-r", "0-9", server.url() + "/file"],
            capture_output=True,
            check=True,
        ).stdout
        chunked = subprocess.run(
            ["curl", "-sS", "--max-time", "10", server.url() + "/stream"],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    assert out == payload.read_bytes()[:10]
    assert chunked.splitlines()[-1] == "line 49"
