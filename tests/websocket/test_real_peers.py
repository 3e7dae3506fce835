"""Real sockets on 127.0.0.1 against real peers: the websockets library as client and server.

The echo server of ``examples/ws_echo_server.py`` (our server role) is driven
by the websockets client, with and without permessage-deflate; our client
role (handshake, masking, deflate) talks to a websockets server.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator

import pytest
from websockets.sync.client import connect
from websockets.sync.server import ServerConnection, serve

from tether import websocket as ws


@pytest.fixture(scope="module")
def echo_address() -> Iterator[str]:
    from examples.ws_echo_server import serve as serve_echo

    listener, _thread = serve_echo("127.0.0.1", 0)
    host, port = listener.getsockname()[:2]
    yield f"{host}:{port}"
    listener.close()


@pytest.mark.parametrize("compression", [None, "deflate"])
def test_websockets_client_against_our_server(echo_address: str, compression: str | None) -> None:
    big = os.urandom(1 << 20)
    with connect(f"ws://{echo_address}/", compression=compression, max_size=None) as client:
        client.send("hello")
        assert client.recv(timeout=5) == "hello"
        client.send("κόσμε" * 1000)
        assert client.recv(timeout=5) == "κόσμε" * 1000
        client.send(big)
        assert client.recv(timeout=10) == big
        client.send(["frag", "mented"])  # one message in two frames
        assert client.recv(timeout=5) == "fragmented"
        client.ping(b"are you there").wait(5)
        negotiated = client.response.headers.get("Sec-WebSocket-Extensions")
        assert (negotiated is not None) == (compression is not None)
        client.close(code=4001, reason="done")
    assert client.protocol.close_rcvd is not None
    assert client.protocol.close_rcvd.code == 4001  # RFC 6455 5.5.1: the server echoes the code


def test_invalid_utf8_fails_with_1007(echo_address: str) -> None:
    """The server fails the connection with 1007 on invalid UTF-8 (RFC 6455 8.1), then closes TCP."""
    host, port = echo_address.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        _negotiated, rest = _client_handshake(sock, None)
        assert rest == b""
        sock.sendall(b"\x81\x83\x00\x00\x00\x00\xce\xba\xff")
        conn = ws.Connection(ws.Role.CLIENT, mask_source=os.urandom)
        events: list[ws.Event] = []
        while data := sock.recv(65536):
            conn.receive_data(data)
            events.extend(conn.events())
        conn.receive_data(b"")
        events.extend(conn.events())
    assert len(events) == 1 and isinstance(events[0], ws.Close)
    assert events[0].code == 1007


def test_plain_get_gets_426(echo_address: str) -> None:
    """RFC 6455 4.2.2 / 4.4: a non-upgrade request is refused with 426 and the version."""
    host, port = echo_address.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 426")
    assert b"sec-websocket-version: 13" in head


def _websockets_echo(connection: ServerConnection) -> None:
    for message in connection:
        connection.send(message)


@pytest.fixture(scope="module")
def websockets_server() -> Iterator[tuple[str, int]]:
    server = serve(_websockets_echo, "127.0.0.1", 0, compression="deflate", max_size=None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.socket.getsockname()[:2]
    yield host, port
    server.shutdown()
    thread.join(5)


def _client_handshake(
    sock: socket.socket, deflate: ws.DeflateOptions | None
) -> tuple[ws.Negotiated, bytes]:
    key = ws.make_key(os.urandom(16))
    headers = ws.client_request_headers(b"127.0.0.1", key, deflate=deflate)
    sock.sendall(
        b"GET / HTTP/1.1\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in headers) + b"\r\n"
    )
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    fields = [
        (n.strip().lower(), v.strip()) for n, _, v in (ln.partition(b":") for ln in lines[1:])
    ]
    return ws.check_server_response(status, fields, key, deflate=deflate), rest


@pytest.mark.parametrize(
    "deflate",
    [
        None,
        ws.DeflateOptions(),
        ws.DeflateOptions(client_no_context_takeover=True, server_no_context_takeover=True),
        ws.DeflateOptions(client_max_window_bits=10, server_max_window_bits=11),
    ],
)
def test_our_client_against_websockets_server(
    websockets_server: tuple[str, int], deflate: ws.DeflateOptions | None
) -> None:
    with socket.create_connection(websockets_server, timeout=10) as sock:
        negotiated, rest = _client_handshake(sock, deflate)
        assert (negotiated.deflate is not None) == (deflate is not None)
        conn = ws.Connection(ws.Role.CLIENT, deflate=negotiated.deflate, mask_source=os.urandom)
        if rest:
            conn.receive_data(rest)
        messages: list[ws.Text | ws.Binary] = [
            ws.Text("hello"),
            ws.Binary(os.urandom(200_000)),
            ws.Text("ab" * 50_000),
        ]
        for message in messages:
            conn.send(message)
        sock.sendall(conn.bytes_to_send())
        events: list[ws.Event] = []
        while not conn.should_close_tcp:
            data = sock.recv(65536)
            conn.receive_data(data)
            events.extend(conn.events())
            if len(events) == len(messages) and conn.state is ws.State.OPEN:
                conn.send(ws.Close(1000, "bye"))  # every echo is back: close
            sock.sendall(conn.bytes_to_send())
        assert events == [*messages, ws.Close(1000, "bye")]
        assert conn.state is ws.State.CLOSED
