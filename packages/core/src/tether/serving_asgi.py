"""The ASGI side of a WebSocket upgrade, written once for any ASGI server (sans I/O).

What the ASGI specification decides about a WebSocket request, apart from any socket:

- :func:`offered_subprotocols`: the ``subprotocols`` of the scope (``Sec-WebSocket-Protocol``);
- :func:`websocket_scope`: the whole ``websocket`` scope of an upgrade request;
- :func:`handshake_refusal`: the 403 (the app closed) or 500 (it failed) that answers an
  upgrade the application did not accept.
"""

from __future__ import annotations

from typing import Any

from tether.http1 import Headers, Request, Response
from tether.serving import _plain_response, decode_path, internal_error_response, split_target

__all__ = ["handshake_refusal", "offered_subprotocols", "websocket_scope"]


def offered_subprotocols(headers: Headers) -> list[str]:
    """The subprotocols the client offers (``Sec-WebSocket-Protocol``, every field, in order)."""
    offered: list[str] = []
    for name, value in headers:
        if name == b"sec-websocket-protocol":
            offered.extend(
                p.strip().decode("ascii", "replace") for p in value.split(b",") if p.strip()
            )
    return offered


def websocket_scope(
    request: Request,
    *,
    scheme: str,
    server: tuple[str, int | None] | None,
    client: tuple[str, int] | None,
    root_path: str,
    state: dict[str, Any],
    tls: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ASGI ``websocket`` scope of the upgrade ``request``.

    ``scheme`` is the connection's (``http`` or ``https``, after any trusted proxy's say);
    ``state`` is the lifespan state, copied shallowly; ``tls`` is the TLS extension, if any.
    Raises :class:`~tether.errors.RemoteProtocolError` when the path does not decode.
    """
    raw_path, query = split_target(request.target)
    path = decode_path(raw_path)
    extensions: dict[str, Any] = {"websocket.http.response": {}}
    if tls is not None:
        extensions["tls"] = tls
    return {
        "type": "websocket",
        # Each scope its own dict: an app that writes to it changes no other request's.
        # 2.5: ``reason`` in ``websocket.disconnect`` and ``websocket.close``.
        "asgi": {"version": "3.0", "spec_version": "2.5"},
        "http_version": "1.1",
        "scheme": "wss" if scheme == "https" else "ws",
        "server": server,
        "client": client,
        "root_path": root_path,
        "path": root_path + path,
        "raw_path": root_path.encode("utf-8") + raw_path,
        "query_string": query,
        "headers": request.headers,
        "subprotocols": offered_subprotocols(request.headers),
        "state": state.copy(),
        "extensions": extensions,
    }


def handshake_refusal(failed: bool) -> tuple[Response, bytes]:
    """The answer to an upgrade the application did not accept, as ASGI asks: a 500 when it
    failed, a 403 when it closed (or returned) first; the connection closes after it."""
    if failed:
        return internal_error_response()
    return _plain_response(403, b"Forbidden\n", [(b"connection", b"close")])
