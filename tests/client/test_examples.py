"""examples/blocking_client.py and examples/ws_client.py against a real ``tether serve`` (the demo)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.conftest import ROOT
from tests.processes import SOURCES, free_port, read_until, reaped, spawn


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"example_{name}", ROOT / "examples" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[f"example_{name}"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


blocking_client = _load("blocking_client")
ws_client = _load("ws_client")


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    cwd = tmp_path_factory.mktemp("serve")
    with reaped(spawn("tether_asyncio", cwd, "serve", "--port", str(port))) as proc:
        read_until(proc, "running on")
        yield port


def test_keep_alive_and_pipelining(port: int) -> None:
    client = blocking_client.Client("127.0.0.1", port)
    try:
        page = client.request("GET", "/")
        assert page.status == 200 and b"<html" in page.body.lower()
        head, missing, download = client.pipeline(
            [
                ("HEAD", "/", (), b""),
                ("GET", "/nope", (), b""),
                ("GET", "/download?size=100000", (), b""),
            ]
        )
        assert head.status == 200 and head.body == b""
        assert missing.status == 404
        assert download.status == 200
        assert download.body == bytes(i % 251 for i in range(100000))
        assert client.connections == 1
    finally:
        client.close()


def test_chunked_upload(port: int) -> None:
    boundary = b"XyZ"
    parts = [
        b'--XyZ\r\nContent-Disposition: form-data; name="f"; filename="a.bin"\r\n\r\n',
        b"0123456789" * 1000,
        b"\r\n--XyZ--\r\n",
    ]
    client = blocking_client.Client("127.0.0.1", port)
    try:
        result = client.request(
            "POST",
            "/upload",
            [(b"content-type", b"multipart/form-data; boundary=" + boundary)],
            iter(parts),
        )
    finally:
        client.close()
    assert result.status == 200, result.body
    assert json.loads(result.body)["parts"][0]["size"] == 10000


def test_command_line(port: int) -> None:
    env_path = ":".join(map(str, SOURCES))
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "blocking_client.py"),
            f"http://127.0.0.1:{port}/",
            f"http://127.0.0.1:{port}/missing",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PYTHONPATH": env_path},
        check=True,
    )
    assert f"http://127.0.0.1:{port}/: 200," in out.stdout
    assert f"http://127.0.0.1:{port}/missing: 404, " in out.stdout


def test_websocket_echo(port: int) -> None:
    sock = ws_client.WebSocket("127.0.0.1", port, "/ws")
    try:
        sock.send("héllo")
        assert sock.receive() == "héllo"
        sock.send(b"\x00\xff" * 5000)
        assert sock.receive() == b"\x00\xff" * 5000
    finally:
        sock.close()
    assert sock.conn.close_code == 1000


def test_ws_command_line(port: int) -> None:
    env_path = ":".join(map(str, SOURCES))
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "ws_client.py"),
            f"ws://127.0.0.1:{port}/ws",
            "one",
            "two",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PYTHONPATH": env_path},
        check=True,
    )
    assert out.stdout.splitlines() == ["one", "two"]
