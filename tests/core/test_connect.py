"""CONNECT on the server side (RFC 9110 9.3.6), checked against h11.

A server that does not tunnel answers 501 and the connection stays HTTP; a 2xx
turns it into a tunnel, as h11 does: both states become SWITCHED_PROTOCOL and
the bytes after the request are ``trailing_data``. Where we are stricter than
h11 the test says so.
"""

from __future__ import annotations

import h11
import pytest

from tether.errors import LocalProtocolError
from tether.http1 import (
    PAUSED,
    ClientConnection,
    EndOfMessage,
    HTTPState,
    Request,
    Response,
    ServerConnection,
)
from tether.serving_cycle import ResponseCycle

CONNECT = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
TLS = b"\x16\x03\x01\x00\x05hello"
NEXT = b"GET /next HTTP/1.1\r\nHost: example.com\r\n\r\n"


def _ours(wire: bytes) -> ServerConnection:
    conn = ServerConnection(now=0.0)
    conn.receive_data(wire)
    assert isinstance(conn.next_event(), Request)
    assert conn.next_event() == EndOfMessage()
    return conn


def _h11(wire: bytes) -> h11.Connection:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(wire)
    assert isinstance(conn.next_event(), h11.Request)
    assert isinstance(conn.next_event(), h11.EndOfMessage)
    return conn


class TestNoTunnel:
    def test_a_501_keeps_the_connection_http_as_in_h11(self) -> None:
        ours, theirs = _ours(CONNECT + NEXT), _h11(CONNECT + NEXT)
        head = ours.send(Response(501, [(b"content-length", b"0")]))
        ours.send(EndOfMessage())
        theirs.send(h11.Response(status_code=501, headers=[("content-length", "0")]))
        theirs.send(h11.EndOfMessage())
        assert head.startswith(b"HTTP/1.1 501 ")
        assert ours.keep_alive and theirs.our_state is h11.DONE
        assert ours.start_next_cycle()
        theirs.start_next_cycle()
        ours_next, theirs_next = ours.next_event(), theirs.next_event()
        assert isinstance(ours_next, Request) and isinstance(theirs_next, h11.Request)
        assert ours_next.target == theirs_next.target == b"/next"
        assert ours.trailing_data == b""


class TestTunnel:
    def test_a_2xx_opens_a_tunnel_as_in_h11(self) -> None:
        ours, theirs = _ours(CONNECT + TLS), _h11(CONNECT + TLS)
        head = ours.send(Response(200))
        theirs_head = theirs.send(h11.Response(status_code=200, headers=[]))
        # RFC 9110 9.3.6: "switch to tunnel mode immediately after the response header
        # section": no framing of ours, nothing after the empty line.
        assert head == b"HTTP/1.1 200 OK\r\n\r\n"
        assert theirs_head == b"HTTP/1.1 200 \r\n\r\n"  # h11 writes no reason phrase
        assert ours.our_state is ours.their_state is HTTPState.SWITCHED_PROTOCOL
        assert theirs.our_state is theirs.their_state is h11.SWITCHED_PROTOCOL
        assert ours.trailing_data == theirs.trailing_data[0] == TLS
        assert ours.next_event() is PAUSED
        with pytest.raises(LocalProtocolError):
            ours.send(EndOfMessage())

    def test_our_client_reads_our_tunnel(self) -> None:
        client = ClientConnection()
        wire = client.send(Request(b"CONNECT", b"example.com:443", [(b"host", b"example.com:443")]))
        wire += client.send(EndOfMessage())
        server = _ours(wire + TLS)
        client.receive_data(server.send(Response(200)) + b"server bytes")
        assert isinstance(client.next_event(), Response)
        assert client.their_state is HTTPState.SWITCHED_PROTOCOL
        assert client.trailing_data == b"server bytes" and server.trailing_data == TLS

    def test_framing_fields_in_a_2xx_are_refused(self) -> None:
        """RFC 9110 9.3.6: "A server MUST NOT send any Transfer-Encoding or Content-Length
        header fields in a 2xx (Successful) response to CONNECT." (h11 sends them.)"""
        for field in [(b"content-length", b"0"), (b"Transfer-Encoding", b"chunked")]:
            conn = _ours(CONNECT)
            with pytest.raises(LocalProtocolError):
                conn.send(Response(200, [field]))
            # Nothing was sent: a valid answer still can be.
            assert conn.send(Response(200)) == b"HTTP/1.1 200 OK\r\n\r\n"

    def test_a_tunnel_before_the_request_ended_is_refused(self) -> None:
        """Stricter than h11, which switches while the request is still in SEND_BODY: as
        for a 101, the request's EndOfMessage comes first (it says where the tunnel starts)."""
        conn = ServerConnection(now=0.0)
        conn.receive_data(CONNECT)
        assert isinstance(conn.next_event(), Request)
        with pytest.raises(LocalProtocolError, match="EndOfMessage"):
            conn.send(Response(200))
        assert conn.next_event() == EndOfMessage()
        assert conn.send(Response(204)) == b"HTTP/1.1 204 No Content\r\n\r\n"
        assert conn.our_state is HTTPState.SWITCHED_PROTOCOL


class TestServersDoNotTunnel:
    """ASGI and WSGI cannot carry a tunnel, so the shared response cycle refuses a 2xx."""

    def test_an_application_2xx_is_refused_before_anything_is_committed(self) -> None:
        conn = _ours(CONNECT + NEXT)
        request = Request(b"CONNECT", b"example.com:443", [(b"host", b"example.com:443")])
        cycle = ResponseCycle(conn, request, "127.0.0.1", date=None, server=None)
        with pytest.raises(LocalProtocolError, match="tunnel"):
            cycle.start(200, [(b"content-type", b"text/plain")])
        assert not cycle.committed
        cycle.start(501, [(b"content-length", b"0")])
        assert cycle.body(b"").startswith(b"HTTP/1.1 501 ")
        assert conn.start_next_cycle()
        assert isinstance(conn.next_event(), Request)
