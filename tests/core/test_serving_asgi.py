"""tether.serving_asgi: the ASGI side of a WebSocket upgrade, apart from any socket."""

from __future__ import annotations

import pytest

from tether.errors import RemoteProtocolError
from tether.http1 import Request
from tether.serving_asgi import handshake_refusal, offered_subprotocols, websocket_scope


def _upgrade(target: bytes = b"/chat?room=1", *extra: tuple[bytes, bytes]) -> Request:
    headers = [(b"host", b"example.com"), (b"upgrade", b"websocket"), *extra]
    return Request(method=b"GET", target=target, headers=headers, http_version=b"1.1")


class TestOfferedSubprotocols:
    def test_every_field_in_order_empty_items_dropped(self) -> None:
        headers = [
            (b"sec-websocket-protocol", b"chat, , superchat"),
            (b"host", b"a"),
            (b"sec-websocket-protocol", b" v2.json "),
        ]
        assert offered_subprotocols(headers) == ["chat", "superchat", "v2.json"]

    def test_none_offered(self) -> None:
        assert offered_subprotocols([(b"host", b"a")]) == []


class TestWebSocketScope:
    def test_fields(self) -> None:
        state = {"db": object()}
        scope = websocket_scope(
            _upgrade(b"/a%20b?x=1", (b"sec-websocket-protocol", b"chat")),
            scheme="https",
            server=("127.0.0.1", 8000),
            client=("10.0.0.1", 5000),
            root_path="/app",
            state=state,
            tls={"tls_version": 0x0304},
        )
        assert scope["type"] == "websocket"
        assert scope["scheme"] == "wss"
        assert (scope["path"], scope["raw_path"]) == ("/app/a b", b"/app/a%20b")
        assert scope["query_string"] == b"x=1"
        assert scope["subprotocols"] == ["chat"]
        assert scope["state"] == state and scope["state"] is not state
        assert scope["extensions"] == {
            "websocket.http.response": {},
            "tls": {"tls_version": 0x0304},
        }

    def test_plain_scheme_and_no_tls(self) -> None:
        scope = websocket_scope(
            _upgrade(), scheme="http", server=None, client=None, root_path="", state={}
        )
        assert scope["scheme"] == "ws"
        assert scope["extensions"] == {"websocket.http.response": {}}

    def test_a_path_that_does_not_decode_is_the_peers_fault(self) -> None:
        with pytest.raises(RemoteProtocolError):
            websocket_scope(
                _upgrade(b"/%ff"), scheme="http", server=None, client=None, root_path="", state={}
            )


@pytest.mark.parametrize(("failed", "status"), [(False, 403), (True, 500)])
def test_handshake_refusal_closes_the_connection(failed: bool, status: int) -> None:
    response, body = handshake_refusal(failed)
    assert response.status_code == status
    headers = dict(response.headers)
    assert headers[b"connection"] == b"close"
    assert headers[b"content-length"] == str(len(body)).encode()
