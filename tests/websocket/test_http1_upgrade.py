"""The handshake with tether.http1: 101 or a rejection, and the bytes after the request handed over."""

from __future__ import annotations

import os

from _ws_helpers import feed, fixed_masks

from tether import websocket as ws
from tether.http1 import (
    NEED_DATA,
    Data,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
    ServerConnection,
    State,
)


def _request_bytes(headers: list[tuple[bytes, bytes]]) -> bytes:
    return (
        b"GET /chat HTTP/1.1\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in headers) + b"\r\n"
    )


def _read_request(http: ServerConnection) -> Request:
    request = None
    while True:
        event = http.next_event(0.0)
        if isinstance(event, Request):
            request = event
        elif isinstance(event, EndOfMessage):
            assert request is not None
            return request
        assert event is not NEED_DATA, "the whole request was fed"


def test_upgrade_hands_over_the_frames_sent_with_the_request() -> None:
    key = ws.make_key(os.urandom(16))
    client = ws.Connection(ws.Role.CLIENT, mask_source=fixed_masks)
    client.send(ws.Text("sent before the 101 arrived"))
    early_frames = client.bytes_to_send()
    headers = ws.client_request_headers(b"example.com", key, subprotocols=["chat"])
    http = ServerConnection(now=0.0)
    http.receive_data(_request_bytes(headers) + early_frames, 0.0)
    request = _read_request(http)
    result = ws.server_handshake(request, subprotocols=["chat"])
    assert isinstance(result, ws.Accepted)
    response = http.send(InformationalResponse(101, result.headers))
    assert response.startswith(b"HTTP/1.1 101 ")
    assert http.our_state is State.SWITCHED_PROTOCOL
    assert http.trailing_data == early_frames
    server = ws.Connection(ws.Role.SERVER, deflate=result.deflate)
    assert feed(server, [http.trailing_data]) == [ws.Text("sent before the 101 arrived")]
    # The client checks the 101 as a real client would.
    head = response.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]
    fields = [(n.strip().lower(), v.strip()) for n, _, v in (line.partition(b":") for line in head)]
    assert ws.check_server_response(101, fields, key, subprotocols=["chat"]).subprotocol == "chat"


def test_rejection_is_a_complete_response() -> None:
    http = ServerConnection(now=0.0)
    http.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n", 0.0)
    request = _read_request(http)
    result = ws.server_handshake(request)
    assert isinstance(result, ws.Rejected)
    assert result.status_code == 400  # Upgrade without Connection: upgrade
    out = (
        http.send(Response(result.status_code, result.headers))
        + http.send(Data(result.body))
        + http.send(EndOfMessage())
    )
    assert out.startswith(b"HTTP/1.1 400 ")
    assert out.endswith(result.body)
