"""Any input gives events or a ProtocolError subclass, never another exception.

Random bytes go to both roles (with and without permessage-deflate, whole and
split), random header lists to the server handshake and the client check, and
random extension header values to the parser.
"""

from __future__ import annotations

import contextlib

import pytest
from _ws_helpers import PROPERTY, fixed_masks, split
from hypothesis import given
from hypothesis import strategies as st

from tether import websocket as ws
from tether.http1._events import Request
from tether.limits import Limits
from tether.websocket.deflate import parse_extensions

SMALL = Limits(ws_max_frame_size=300, ws_max_message_size=600)


def _frame_like() -> st.SearchStrategy[bytes]:
    # Mostly plausible first bytes so the parser gets past the header often.
    head = st.tuples(
        st.sampled_from([0x81, 0x82, 0x01, 0x00, 0x80, 0x88, 0x89, 0x8A, 0xC1, 0xC2, 0x41, 0x8B]),
        st.integers(0, 255),
    ).map(bytes)
    return st.lists(st.tuples(head, st.binary(max_size=40)).map(b"".join), max_size=6).map(b"".join)


@pytest.mark.parametrize("role", [ws.Role.SERVER, ws.Role.CLIENT])
@pytest.mark.parametrize("deflate", [None, ws.DeflateParams()])
@PROPERTY
@given(
    data=st.one_of(st.binary(max_size=300), _frame_like()),
    points=st.lists(st.integers(0, 300), max_size=5),
    eof=st.booleans(),
)
def test_random_bytes(
    role: ws.Role, deflate: ws.DeflateParams | None, data: bytes, points: list[int], eof: bool
) -> None:
    conn = ws.Connection(role, deflate=deflate, limits=SMALL, mask_source=fixed_masks)
    try:
        for chunk in split(data, points):
            conn.receive_data(chunk)
            for _event in conn.events():
                pass
        if eof:
            conn.receive_data(b"")
            list(conn.events())
    except ws.ProtocolError as exc:
        assert isinstance(exc, ws.RemoteProtocolError)
        assert exc.close_code in (1002, 1007, 1009)
        assert conn.state is ws.State.CLOSED and conn.should_close_tcp
    assert conn.pending_bytes == len(conn.bytes_to_send())


token = st.sampled_from(
    [b"websocket", b"Upgrade", b"13", b"dGhlIHNhbXBsZSBub25jZQ==", b"permessage-deflate", b"x"]
)
names = st.sampled_from(
    [
        b"host",
        b"upgrade",
        b"connection",
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-protocol",
        b"sec-websocket-extensions",
        b"sec-websocket-accept",
    ]
)
values = st.one_of(token, st.binary(max_size=40))


@PROPERTY
@given(
    method=st.sampled_from([b"GET", b"POST", b"get"]),
    version=st.sampled_from([b"1.1", b"1.0"]),
    headers=st.lists(st.tuples(names, values), max_size=10),
)
def test_server_handshake_any_headers(
    method: bytes, version: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    result = ws.server_handshake(
        Request(method, b"/", headers, version),
        subprotocols=["chat"],
        deflate=ws.DeflateOptions(),
    )
    if isinstance(result, ws.Rejected):
        assert result.status_code in (400, 426)
    else:
        assert method == b"GET" and version == b"1.1"


@PROPERTY
@given(
    status=st.sampled_from([101, 200, 400]),
    headers=st.lists(st.tuples(names, values), max_size=10),
)
def test_client_check_any_response(status: int, headers: list[tuple[bytes, bytes]]) -> None:
    with contextlib.suppress(ws.HandshakeError):
        ws.check_server_response(
            status, headers, b"dGhlIHNhbXBsZSBub25jZQ==", deflate=ws.DeflateOptions()
        )


@PROPERTY
@given(st.lists(st.binary(max_size=60), max_size=3))
def test_extension_parser_any_value(values_: list[bytes]) -> None:
    try:
        parsed = parse_extensions(values_)
    except ws.HandshakeError:
        return
    for name, params in parsed:
        assert name and all(p for p, _ in params)
