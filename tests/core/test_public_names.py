"""The public names of the core, as a library user meets them (issue 18).

- One name, one meaning: a user who imports the HTTP and the WebSocket layers
  side by side gets no name that means two things (``State``, ``Timer`` and
  ``SendEvent`` used to).
- One class for permessage-deflate parameters: what you ask for and what was
  agreed are both ``DeflateOptions`` (``DeflateParams`` is its old name).
- ``client_request_headers`` checks the target a GET may carry.
"""

from __future__ import annotations

import importlib

import pytest

import tether
from tether import http1
from tether import websocket as ws
from tether.errors import LocalProtocolError
from tether.http1 import ClientConnection, EndOfMessage, Request, ServerConnection

PUBLIC = ["tether", "tether.http1", "tether.websocket", "tether.errors", "tether.limits"]


def test_no_public_name_means_two_things() -> None:
    meanings: dict[str, dict[int, str]] = {}
    for name in PUBLIC:
        module = importlib.import_module(name)
        for exported in module.__all__:
            meanings.setdefault(exported, {})[id(getattr(module, exported))] = name
    clashes = {name: sorted(where.values()) for name, where in meanings.items() if len(where) > 1}
    assert clashes == {}


def test_star_imports_of_both_layers_keep_both_state_machines() -> None:
    namespace: dict[str, object] = {}
    exec("from tether.http1 import *\nfrom tether.websocket import *", namespace)
    assert namespace["HTTPState"] is http1.HTTPState
    assert namespace["WebSocketState"] is ws.WebSocketState
    assert namespace["HTTPTimer"] is not namespace["WebSocketTimer"]
    assert "State" not in namespace and "Timer" not in namespace


def test_the_old_names_still_import() -> None:
    from tether.http1 import State, Timer
    from tether.websocket import DeflateParams, SendEvent
    from tether.websocket import State as WsState
    from tether.websocket import Timer as WsTimer

    assert (State, Timer) == (http1.HTTPState, http1.HTTPTimer)
    assert (WsState, WsTimer) == (ws.WebSocketState, ws.WebSocketTimer)
    assert DeflateParams is ws.DeflateOptions and SendEvent == ws.WebSocketSendEvent


def test_a_server_compares_states_with_the_new_names() -> None:
    conn = ServerConnection(now=0.0)
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    conn.next_event()
    assert conn.our_state is http1.HTTPState.SEND_RESPONSE
    assert conn.next_deadline() is None
    deadline = ServerConnection(now=0.0).next_deadline()
    assert deadline is not None and deadline[1] is http1.HTTPTimer.KEEP_ALIVE
    session = ws.Connection(ws.Role.SERVER, now=0.0)
    assert session.state is ws.WebSocketState.OPEN


class TestOneDeflateClass:
    def test_what_is_agreed_has_the_type_of_what_was_asked(self) -> None:
        key = ws.make_key(bytes(16))
        headers = ws.client_request_headers(b"example.com", key, deflate=ws.DeflateOptions())
        accepted = ws.server_handshake(
            _Upgrade(headers), subprotocols=[], deflate=ws.DeflateOptions(level=1)
        )
        assert isinstance(accepted, ws.Accepted)
        assert type(accepted.deflate) is ws.DeflateOptions
        negotiated = ws.check_server_response(
            101, accepted.headers, key, deflate=ws.DeflateOptions()
        )
        assert type(negotiated.deflate) is ws.DeflateOptions
        # What was agreed drives a connection; so would the same values written by hand.
        ws.Connection(ws.Role.CLIENT, deflate=negotiated.deflate, mask_source=bytes)

    def test_an_agreed_8_bit_window_of_the_peer_is_representable(self) -> None:
        """A client may compress with an 8-bit window (we only inflate it, with 15 bits)."""
        assert ws.DeflateOptions(client_max_window_bits=8).client_max_window_bits == 8
        with pytest.raises(ValueError):
            ws.DeflateOptions(client_max_window_bits=7)

    def test_our_own_8_bit_window_is_refused_where_we_would_compress(self) -> None:
        key = ws.make_key(bytes(16))
        with pytest.raises(ValueError, match="8-bit"):
            ws.client_request_headers(
                b"example.com", key, deflate=ws.DeflateOptions(client_max_window_bits=8)
            )
        headers = ws.client_request_headers(b"example.com", key, deflate=ws.DeflateOptions())
        with pytest.raises(ValueError, match="8-bit"):
            ws.server_handshake(
                _Upgrade(headers),
                subprotocols=[],
                deflate=ws.DeflateOptions(server_max_window_bits=8),
            )


def _Upgrade(headers: list[tuple[bytes, bytes]]) -> Request:
    """A parsed upgrade request, as ``server_handshake`` reads one."""
    return Request(b"GET", b"/chat", headers)


class TestClientRequestTarget:
    """RFC 9112 3.2: a GET's target is origin-form or absolute-form."""

    def _send(self, host: bytes, target: bytes) -> bytes:
        headers = ws.client_request_headers(host, ws.make_key(bytes(16)), target=target)
        client = ClientConnection()
        return client.send(Request(b"GET", target, headers)) + client.send(EndOfMessage())

    def test_origin_form(self) -> None:
        wire = self._send(b"example.com:8080", b"/chat?room=1")
        server = ServerConnection(now=0.0)
        server.receive_data(wire)
        request = server.next_event()
        assert isinstance(request, Request)
        assert isinstance(ws.server_handshake(request, subprotocols=[]), ws.Accepted)
        assert (b"host", b"example.com:8080") in request.headers

    def test_absolute_form_names_the_host(self) -> None:
        wire = self._send(b"Example.com", b"http://example.com/chat")
        assert wire.startswith(b"GET http://example.com/chat HTTP/1.1\r\nhost: Example.com\r\n")
        with pytest.raises(LocalProtocolError, match=r"3\.2\.2"):
            self._send(b"example.com", b"http://other.example/chat")

    @pytest.mark.parametrize(
        "target",
        [b"example.com:443", b"*", b"ws://example.com/chat", b"wss://example.com/", b"/a b"],
    )
    def test_other_forms_are_refused(self, target: bytes) -> None:
        with pytest.raises(LocalProtocolError):
            ws.client_request_headers(b"example.com", ws.make_key(bytes(16)), target=target)

    def test_a_uri_given_as_the_host_is_refused(self) -> None:
        """The old surprise: the URI went into Host whole (``host: ws://example.com/chat``)."""
        for host in [b"ws://example.com/chat", b"example.com/chat", b"user@example.com", b""]:
            with pytest.raises(LocalProtocolError, match="host"):
                ws.client_request_headers(host, ws.make_key(bytes(16)))


def test_the_package_version_is_still_exported() -> None:
    assert isinstance(tether.__version__, str)
