"""Hypothesis over real sockets: generated valid requests reach the WSGI app exactly (sent whole,
byte by byte or split at chosen points); arbitrary bytes never hurt the server."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from threaded_helpers import running

from tether.serving import split_target
from tether.strategies import GeneratedRequest, requests
from tether_threaded import Server

_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_KEYS = (
    "REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL", "CONTENT_TYPE",
    "CONTENT_LENGTH",
)  # fmt: skip


def _app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read(-1)
    seen = {k: v for k, v in environ.items() if k.startswith("HTTP_") or k in _KEYS}
    seen["body"] = body.decode("latin-1")
    out = json.dumps(seen, sort_keys=True).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))]
    )
    return [out]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running(_app, timeout_request_head=2.0, threads=4) as srv:
        yield srv


def _expected(request: GeneratedRequest) -> dict[str, str]:
    path, query = split_target(request.target)
    out = {
        "REQUEST_METHOD": request.method.decode(),
        "PATH_INFO": path.decode("latin-1"),
        "QUERY_STRING": query.decode("latin-1"),
        "SERVER_PROTOCOL": "HTTP/" + request.version.decode(),
        "body": request.body.decode("latin-1"),
    }
    for name, value in request.expected_headers():
        if b"_" in name:
            continue  # dropped: it would collide with its "-" twin in the environ
        text = name.decode("latin-1").upper().replace("-", "_")
        key = text if text in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + text
        old = out.get(key)
        decoded = value.decode("latin-1")
        if old is None:
            out[key] = decoded
        else:
            out[key] = f"{old}; {decoded}" if key == "HTTP_COOKIE" else f"{old}, {decoded}"
    if request.target[:1] not in (b"/", b"*"):
        # Absolute-form: the core reports the target's authority as the Host (RFC 9112 3.2.2).
        out["HTTP_HOST"] = urlsplit(request.target).netloc.decode("latin-1")
    if "HTTP_TRANSFER_ENCODING" in out or "CONTENT_LENGTH" in out:
        # The server gathers the body before the app runs: de-chunked, with its length.
        out.pop("HTTP_TRANSFER_ENCODING", None)
        out["CONTENT_LENGTH"] = str(len(request.body))
    return out


def _read_response(sock: socket.socket, head_request: bool) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, f"closed before a response head: {data!r}"
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    if head_request:
        return head, b""
    while len(rest) < length:
        piece = sock.recv(65536)
        assert piece
        rest += piece
    return head, rest[:length]


@_SETTINGS
@given(request=requests(), data=st.data())
def test_generated_requests_reach_the_app_exactly(
    server: Server, request: GeneratedRequest, data: st.DataObject
) -> None:
    wire = request.to_bytes()
    how = data.draw(st.sampled_from(["whole", "bytes", "split"]))
    if how == "whole":
        pieces = [wire]
    elif how == "bytes":
        pieces = [wire[i : i + 1] for i in range(min(len(wire), 300))] + [wire[300:]]
    else:
        cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=6)))
        pieces = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
    host, port = server.address[:2]
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in pieces:
            if piece:
                sock.sendall(piece)
        head, body = _read_response(sock, request.method == b"HEAD")
    assert head.startswith(b"HTTP/1.1 200 OK"), head
    if request.method != b"HEAD":
        assert json.loads(body) == _expected(request)


@_SETTINGS
@given(garbage=st.binary(min_size=1, max_size=300))
def test_arbitrary_bytes_never_hurt_the_server(server: Server, garbage: bytes) -> None:
    host, port = server.address[:2]
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(garbage)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while piece := sock.recv(65536):
            answer += piece
    # Nothing, or whole HTTP/1.1 responses (an error status unless the bytes were a request).
    assert answer == b"" or answer.startswith(b"HTTP/1.1 "), answer[:80]
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"GET /alive HTTP/1.1\r\nHost: x\r\n\r\n")
        head, body = _read_response(sock, False)
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert json.loads(body)["PATH_INFO"] == "/alive"
