"""Server -> client round trips, and a differential against h11's client role.

Whatever ServerConnection writes for a valid response, ClientConnection reads
back as the same status, fields, body and trailers, fed whole or split; and on
those bytes h11's client agrees with ours.
"""

from __future__ import annotations

import h11
from hypothesis import given
from hypothesis import strategies as st

from tether.http1 import (
    NEED_DATA,
    ClientConnection,
    Data,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
    ServerConnection,
)
from tether.strategies import GeneratedResponse, responses

Read = tuple[list[int], int, list[tuple[bytes, bytes]], bytes, list[tuple[bytes, bytes]]]


def serve(method: bytes, version: bytes, generated: GeneratedResponse) -> bytes:
    """The bytes a server connection writes for ``generated`` answering one request."""
    server = ServerConnection()
    server.receive_data(b"%s / HTTP/%s\r\nHost: example.com\r\n\r\n" % (method, version))
    assert isinstance(server.next_event(), Request)
    assert isinstance(server.next_event(), EndOfMessage)
    events = generated.events()
    if version == b"1.0":
        # RFC 9110 15.2: "A server MUST NOT send a 1xx response to an HTTP/1.0 client"
        # (ServerConnection does not refuse it yet).
        events = [e for e in events if not isinstance(e, InformationalResponse)]
    if method == b"HEAD" or version == b"1.0":
        events[-1] = EndOfMessage()  # trailers only go with a chunked body
    return b"".join(server.send(event) for event in events)


def read(method: bytes, version: bytes, pieces: list[bytes], eof: bool) -> tuple[Read, bool]:
    """What ClientConnection reads from ``pieces``: (1xx, status, fields, body, trailers)."""
    client = ClientConnection()
    client.send(Request(method, b"/", [(b"host", b"example.com")], version))
    client.send(EndOfMessage())
    informational: list[int] = []
    status = -1
    headers: list[tuple[bytes, bytes]] = []
    body = []
    for piece in [*pieces, b""] if eof else pieces:
        client.receive_data(piece)
        while (event := client.next_event()) is not NEED_DATA:
            if isinstance(event, InformationalResponse):
                informational.append(event.status_code)
            elif isinstance(event, Response):
                status, headers = event.status_code, list(event.headers)
            elif isinstance(event, Data):
                body.append(event.data)
            else:
                assert isinstance(event, EndOfMessage), event
                return (informational, status, headers, b"".join(body), list(event.trailers)), (
                    client.keep_alive
                )
    raise AssertionError("no EndOfMessage")


@given(
    generated=responses(),
    method=st.sampled_from([b"GET", b"GET", b"POST", b"HEAD"]),
    version=st.sampled_from([b"1.1", b"1.1", b"1.0"]),
    data=st.data(),
)
def test_server_to_client(
    generated: GeneratedResponse, method: bytes, version: bytes, data: st.DataObject
) -> None:
    wire = serve(method, version, generated)
    n = len(wire)
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=6)))
    pieces = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, n]) if a < b]
    # A close-delimited body (HTTP/1.0, no length) ends when the server closes.
    eof = version == b"1.0"
    (informational, status, headers, body, trailers), keep_alive = read(
        method, version, pieces, eof
    )
    assert informational == ([] if version == b"1.0" else list(generated.informational))
    assert status == generated.status
    sent = [(name.lower(), value) for name, value in generated.headers]
    assert [
        h for h in headers if h[0] not in (b"content-length", b"transfer-encoding", b"connection")
    ] == sent
    assert body == (b"" if method == b"HEAD" else generated.body)
    chunked = (b"transfer-encoding", b"chunked") in headers
    assert trailers == (
        [(n.lower(), v) for n, v in generated.trailers] if chunked and method != b"HEAD" else []
    )
    assert keep_alive == (version == b"1.1")


def h11_read(method: bytes, wire: bytes) -> Read:
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=method, target="/", headers=[("Host", "example.com")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(wire)
    informational: list[int] = []
    status = -1
    headers: list[tuple[bytes, bytes]] = []
    body = []
    while True:
        event = conn.next_event()
        if isinstance(event, h11.InformationalResponse):
            informational.append(event.status_code)
        elif isinstance(event, h11.Response):
            status, headers = event.status_code, list(event.headers.raw_items())
        elif isinstance(event, h11.Data):
            body.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            trailers = list(event.headers.raw_items())
            return (
                informational,
                status,
                [(n.lower(), v) for n, v in headers],
                b"".join(body),
                [(n.lower(), v) for n, v in trailers],
            )
        else:
            raise AssertionError(event)


@given(generated=responses(), method=st.sampled_from([b"GET", b"POST", b"HEAD"]))
def test_same_as_h11(generated: GeneratedResponse, method: bytes) -> None:
    wire = serve(method, b"1.1", generated)
    ours, _ = read(method, b"1.1", [wire], eof=False)
    assert ours == h11_read(method, wire)


@given(
    generated=st.lists(responses(max_body=100), min_size=1, max_size=4),
    methods=st.lists(st.sampled_from([b"GET", b"HEAD", b"POST"]), min_size=4, max_size=4),
    data=st.data(),
)
def test_pipelined_server_to_client(
    generated: list[GeneratedResponse], methods: list[bytes], data: st.DataObject
) -> None:
    """Several requests pipelined on one connection: every response, in order, from any split."""
    server = ServerConnection()
    client = ClientConnection()
    wire_in = b""
    for method in methods[: len(generated)]:
        wire_in += client.send(Request(method, b"/", [(b"host", b"example.com")]))
        wire_in += client.send(EndOfMessage())
    server.receive_data(wire_in)
    wire = b""
    for method, response in zip(methods, generated):
        assert isinstance(server.next_event(), Request)
        assert isinstance(server.next_event(), EndOfMessage)
        events = response.events()
        if method == b"HEAD":
            events[-1] = EndOfMessage()
        wire += b"".join(server.send(event) for event in events)
        assert server.start_next_cycle()
    n = len(wire)
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=6)))
    got: list[tuple[int, bytes]] = []
    body: list[bytes] = []
    status = -1
    for a, b in zip([0, *cuts], [*cuts, n]):
        if a < b:
            client.receive_data(wire[a:b])
        while (event := client.next_event()) is not NEED_DATA:
            if isinstance(event, Response):
                status, body = event.status_code, []
            elif isinstance(event, Data):
                body.append(event.data)
            elif isinstance(event, EndOfMessage):
                got.append((status, b"".join(body)))
            elif not isinstance(event, InformationalResponse):
                break  # PAUSED: every response read
    expected = [(r.status, b"" if m == b"HEAD" else r.body) for m, r in zip(methods, generated)]
    assert got == expected
    assert client.keep_alive and client.pending_responses == 0
