"""1xx responses and HTTP/1.0 clients (RFC 9110 15.2 and 7.8).

RFC 9110 15.2: "A server MUST NOT send a 1xx response to an HTTP/1.0 client."
A 100 or a 103 is advice a client can do without, so ``send`` checks it like
any other event and then drops it (``b""``): a server need not look at the
version before sending Early Hints. A 101 is not advice (the connection would
change protocol), and RFC 9110 7.8 says "A server MUST ignore an Upgrade header
field that is received in an HTTP/1.0 request", so it is refused. h11 sends
all of them (the first test shows it), so this is where we are stricter.
"""

from __future__ import annotations

import h11
import pytest

from tether.errors import LocalProtocolError
from tether.http1 import (
    Data,
    EndOfMessage,
    HTTPState,
    InformationalResponse,
    Request,
    Response,
    ServerConnection,
)

HINTS = InformationalResponse(103, [(b"link", b"</style.css>; rel=preload")])


def _after_request(wire: bytes) -> ServerConnection:
    conn = ServerConnection(now=0.0)
    conn.receive_data(wire)
    assert isinstance(conn.next_event(), Request)
    return conn


class TestRfc9110_15_2_NoInformationalToHttp10:
    def test_h11_would_send_it(self) -> None:
        conn = h11.Connection(h11.SERVER)
        conn.receive_data(b"GET / HTTP/1.0\r\n\r\n")
        conn.next_event()
        sent = conn.send(h11.InformationalResponse(status_code=103, headers=[("link", "</a>")]))
        assert sent is not None and sent.startswith(b"HTTP/1.1 103")

    @pytest.mark.parametrize("status", [100, 102, 103])
    def test_a_1xx_to_an_http10_client_is_dropped(self, status: int) -> None:
        conn = _after_request(b"POST /p HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi")
        assert conn.send(InformationalResponse(status)) == b""
        assert conn.our_state is HTTPState.SEND_RESPONSE
        assert conn.next_event() == Data(b"hi")
        head = conn.send(Response(200, [(b"content-length", b"2")]))
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b" 1" not in head.split(b"\r\n")[0][:9]
        assert conn.send(Data(b"ok")) == b"ok"

    def test_an_http11_client_gets_it(self) -> None:
        conn = _after_request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert (
            conn.send(HINTS)
            == b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n"
        )

    def test_a_dropped_1xx_is_still_checked(self) -> None:
        """A caller's mistake surfaces whatever the client's version."""
        conn = _after_request(b"GET / HTTP/1.0\r\n\r\n")
        with pytest.raises(LocalProtocolError):
            conn.send(InformationalResponse(103, [(b"link", b"a\r\nb")]))
        conn.send(Response(200, [(b"content-length", b"0")]))
        with pytest.raises(LocalProtocolError):
            conn.send(HINTS)  # after the final response: illegal in any version


class TestRfc9110_7_8_UpgradeIgnoredInHttp10:
    def test_a_101_to_an_http10_upgrade_request_is_refused(self) -> None:
        conn = _after_request(
            b"GET /chat HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        )
        assert conn.next_event() == EndOfMessage()
        with pytest.raises(LocalProtocolError, match=r"HTTP/1\.0"):
            conn.send(InformationalResponse(101, [(b"upgrade", b"websocket")]))
        # The request is answered as plain HTTP instead.
        assert conn.send(Response(426, [(b"content-length", b"0")])).startswith(b"HTTP/1.1 426")

    def test_the_same_request_in_http11_may_switch(self) -> None:
        conn = _after_request(
            b"GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        )
        assert conn.next_event() == EndOfMessage()
        assert conn.send(InformationalResponse(101, [(b"upgrade", b"websocket")]))
        assert conn.our_state is HTTPState.SWITCHED_PROTOCOL
