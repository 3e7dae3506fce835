"""Multipart bodies from real clients: recorded captures, and live uploads from httpx and curl.

The captures (tests/bodies/data/captures.json says how each was made) are parsed
whole, byte by byte and in 7-byte pieces, and compared with the expected parts
and with both peer parsers. The live tests run a socket server on 127.0.0.1 that
feeds each recv() straight into the parser, and post to it with real clients.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
from typing import Any

import httpx
import multipart as defnull
import pytest
import python_multipart

from tests.bodies._support import DATA
from tether.multipart import MultipartParser, PartData, PartEnd, PartStart, parse_boundary

CAPTURES: list[dict[str, Any]] = json.loads((DATA / "captures.json").read_text("utf-8"))["captures"]


def expected_data(part: dict[str, Any]) -> bytes:
    return (DATA / part["file"]).read_bytes() if "file" in part else part["text"].encode("utf-8")


def parse(boundary: bytes, pieces: list[bytes]) -> list[tuple[str, str | None, str | None, bytes]]:
    parser = MultipartParser(boundary)
    parts: list[tuple[str, str | None, str | None, bytes]] = []
    current: list[Any] = []
    for piece in [*pieces, None]:
        events = parser.close() if piece is None else parser.feed(piece)
        for event in events:
            if isinstance(event, PartStart):
                current = [event.name, event.filename, event.content_type, b""]
            elif isinstance(event, PartData):
                current[3] += event.data
            elif isinstance(event, PartEnd):
                parts.append((current[0], current[1], current[2], current[3]))
    return parts


@pytest.mark.parametrize("capture", CAPTURES, ids=[c["file"] for c in CAPTURES])
def test_capture(capture: dict[str, Any]) -> None:
    body = (DATA / capture["file"]).read_bytes()
    boundary = parse_boundary(capture["content_type"])
    want = [
        (p["name"], p["filename"], p["content_type"], expected_data(p)) for p in capture["parts"]
    ]
    for size in (len(body), 1, 7):
        assert parse(boundary, [body[i : i + size] for i in range(0, len(body), size)]) == want


@pytest.mark.parametrize("capture", CAPTURES, ids=[c["file"] for c in CAPTURES])
def test_capture_data_agrees_with_peers(capture: dict[str, Any]) -> None:
    """Both peers see the same part contents (they post-process names differently:
    defnull decodes %22 and strips IE paths; we return names as sent)."""
    body = (DATA / capture["file"]).read_bytes()
    boundary = parse_boundary(capture["content_type"])
    ours = [p[3] for p in parse(boundary, [body])]
    theirs: list[bytes] = []
    with defnull.PushMultipartParser(boundary) as parser:
        for event in parser.parse(body):
            if isinstance(event, defnull.MultipartSegment):
                theirs.append(b"")
            elif event is not None:
                theirs[-1] += bytes(event)
    assert ours == theirs
    chunks: list[bytes] = []

    def on_part_begin() -> None:
        chunks.append(b"")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        chunks[-1] += data[start:end]

    pm = python_multipart.MultipartParser(
        boundary, {"on_part_begin": on_part_begin, "on_part_data": on_part_data}
    )  # type: ignore[arg-type]
    pm.write(body)
    pm.finalize()
    assert ours == chunks


class _UploadServer:
    """One-request-per-connection HTTP server on 127.0.0.1 feeding the body into MultipartParser."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(20)
        self.port = self.sock.getsockname()[1]
        self.results: list[Any] = []
        self.thread = threading.Thread(target=self._serve_one, daemon=True)
        self.thread.start()

    def _serve_one(self) -> None:
        conn, _ = self.sock.accept()
        conn.settimeout(20)
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            head, _, first = head.partition(b"\r\n\r\n")
            fields = {}
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                fields[name.strip().lower()] = value.strip()
            if fields.get(b"expect", b"").lower() == b"100-continue":
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            remaining = int(fields[b"content-length"]) - len(first)
            pieces = [first] if first else []
            while remaining > 0:
                chunk = conn.recv(min(65536, remaining))
                if not chunk:
                    break
                pieces.append(chunk)
                remaining -= len(chunk)
            try:
                self.results.append(parse(parse_boundary(fields[b"content-type"]), pieces))
                status = b"204 No Content"
            except Exception as exc:  # reported to the test through results
                self.results.append(exc)
                status = b"400 Bad Request"
            conn.sendall(
                b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )

    def result(self) -> Any:
        self.thread.join(30)
        self.sock.close()
        assert self.results, "no request arrived"
        return self.results[0]


BIG = bytes(range(256)) * 4096 + b"\r\n--tail"  # 1 MiB plus a near-delimiter ending


def test_live_httpx_upload() -> None:
    server = _UploadServer()
    response = httpx.post(
        f"http://127.0.0.1:{server.port}/",
        data={"title": "Café ☕"},
        files={"big": ("big.bin", BIG, "application/octet-stream")},
        timeout=20,
    )
    assert response.status_code == 204
    assert server.result() == [
        ("title", None, None, "Café ☕".encode()),
        ("big", "big.bin", "application/octet-stream", BIG),
    ]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_live_curl_upload(tmp_path: Any) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(BIG)
    server = _UploadServer()
    subprocess.run(
        [
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "--max-time",
            "20",
            "-F",
            "title=Café ☕",
            "-F",
            f"big=@{path};type=application/octet-stream",
            f"http://127.0.0.1:{server.port}/",
        ],
        check=True,
        timeout=30,
    )
    assert server.result() == [
        ("title", None, None, "Café ☕".encode()),
        ("big", "big.bin", "application/octet-stream", BIG),
    ]
