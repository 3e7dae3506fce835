"""The conformance vectors of spec/websocket/, each naming its RFC section.

Every framing vector runs three ways (whole, byte by byte, and in stream mode
byte by byte) and must give the same events or the same error and close code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _ws_helpers import feed, fixed_masks, merge, read_frame

from tether import websocket as ws
from tether.http1._events import Request
from tether.limits import Limits

SPEC = Path(__file__).resolve().parents[2] / "spec" / "websocket"
FRAMING = json.loads((SPEC / "framing.json").read_text())["vectors"]
HANDSHAKE = json.loads((SPEC / "handshake.json").read_text())["vectors"]


def _expected(item: dict[str, Any]) -> ws.Event:
    kind = item["type"]
    if kind == "Text":
        return ws.Text(item["data"])
    if kind == "Binary":
        return ws.Binary(bytes.fromhex(item["data_hex"]))
    if kind == "Ping":
        return ws.Ping(bytes.fromhex(item["payload_hex"]))
    if kind == "Pong":
        return ws.Pong(bytes.fromhex(item["payload_hex"]))
    if kind == "Close":
        return ws.Close(item["code"], item["reason"])
    raise AssertionError(kind)


def _connection(vector: dict[str, Any], stream: bool = False) -> ws.Connection:
    limits = Limits(**vector.get("limits", {}))
    # "deflate": the permessage-deflate options both ends agreed (absent: no compression).
    options = vector.get("deflate")
    deflate = None if options is None else ws.DeflateOptions(**options)
    if vector["role"] == "server":
        return ws.Connection(ws.Role.SERVER, limits=limits, stream=stream, deflate=deflate)
    return ws.Connection(
        ws.Role.CLIENT, limits=limits, stream=stream, deflate=deflate, mask_source=fixed_masks
    )


@pytest.mark.parametrize("mode", ["whole", "bytewise", "stream-bytewise"])
@pytest.mark.parametrize("vector", FRAMING, ids=[v["name"] for v in FRAMING])
def test_framing_vector(vector: dict[str, Any], mode: str) -> None:
    data = bytes.fromhex(vector["input_hex"])
    conn = _connection(vector, stream=mode == "stream-bytewise")
    chunks = [data] if mode == "whole" else [data[i : i + 1] for i in range(len(data))]
    expect = vector["expect"]
    if expect and "error" in expect[0]:
        error_class = getattr(ws, expect[0]["error"])
        with pytest.raises(error_class) as info:
            feed(conn, chunks)
        assert info.value.close_code == expect[0]["close_code"]
        assert conn.state is ws.State.CLOSED
        assert conn.should_close_tcp
        # The failure queued a close frame carrying the same code (RFC 6455 7.1.7).
        b0, payload, rest = read_frame(conn.bytes_to_send())
        assert b0 == 0x88
        assert int.from_bytes(payload[:2], "big") == expect[0]["close_code"]
        assert rest == b""
        return
    events = merge(feed(conn, chunks))
    assert events == [_expected(e) for e in expect]
    if "reply_hex" in vector:
        assert conn.bytes_to_send() == bytes.fromhex(vector["reply_hex"])


class _Req:
    def __init__(self, v: dict[str, Any]) -> None:
        self.method = v["method"].encode()
        self.http_version = v["http_version"].encode()
        self.headers = [(n.encode(), val.encode()) for n, val in v["headers"]]


@pytest.mark.parametrize("vector", HANDSHAKE, ids=[v["name"] for v in HANDSHAKE])
def test_handshake_vector(vector: dict[str, Any]) -> None:
    options = vector["options"]
    deflate = ws.DeflateOptions(**options["deflate"]) if "deflate" in options else None
    request = Request(
        vector["method"].encode(),
        b"/",
        [(n.encode(), val.encode()) for n, val in vector["headers"]],
        vector["http_version"].encode(),
    )
    result = ws.server_handshake(
        request, subprotocols=options.get("subprotocols", ()), deflate=deflate
    )
    # Any object with method / headers / http_version works the same (other HTTP parsers).
    assert (
        ws.server_handshake(
            _Req(vector), subprotocols=options.get("subprotocols", ()), deflate=deflate
        )
        == result
    )
    if vector["expect_status"] == 101:
        assert isinstance(result, ws.Accepted), result
        headers = dict(result.headers)
    else:
        assert isinstance(result, ws.Rejected), result
        assert result.status_code == vector["expect_status"]
        assert result.error.status_hint == vector["expect_status"]
        headers = dict(result.headers)
        assert headers[b"content-length"] == str(len(result.body)).encode()
    for name, value in vector["expect_headers"].items():
        assert headers.get(name.encode()) == value.encode(), name
    for name in vector["expect_absent"]:
        assert name.encode() not in headers
