"""Sans-I/O WebSocket (RFC 6455) with permessage-deflate (RFC 7692), for servers and clients.

Server side, after ``tether.http1`` parsed an upgrade request (a ``GET`` has no
body: ``next_event`` gives ``Request`` then ``EndOfMessage``)::

    from tether import websocket as ws
    from tether.http1 import Data, EndOfMessage, InformationalResponse, Request, Response

    # request: tether.http1.Request, headers = [(b"upgrade", b"websocket"), ...]
    result = ws.server_handshake(
        request, subprotocols=["chat"], deflate=ws.DeflateOptions()  # deflate=None: never
    )
    if isinstance(result, ws.Rejected):
        # 426 (+ Sec-WebSocket-Version: 13) or 400, with Content-Length and a text body.
        sock.sendall(
            http.send(Response(result.status_code, result.headers))
            + http.send(Data(result.body))
            + http.send(EndOfMessage())
        )
        sock.close()
        return
    sock.sendall(http.send(InformationalResponse(101, result.headers)))
    conn = ws.Connection(ws.Role.SERVER, deflate=result.deflate, limits=limits, now=now)
    if http.trailing_data:  # bytes that came right after the request (b"" would mean EOF)
        conn.receive_data(http.trailing_data, now)

The loop: bytes in, events out, events in, bytes out. Read the socket with a
timeout up to ``conn.next_deadline()``::

    while True:
        try:
            for event in conn.events():
                if isinstance(event, (ws.Text, ws.Binary)):  # whole messages (stream=False)
                    if conn.state is ws.WebSocketState.OPEN:   # not after our own close frame
                        conn.send(event)              # echo: events go both ways
                elif isinstance(event, ws.Close):     # the connection already answered it
                    pass
                # ws.Ping is answered automatically; ws.Pong, ws.ConnectionLost: informational
        except ws.ProtocolError:       # bad input: the close frame (e.close_code) is queued
            pass
        sock.sendall(conn.bytes_to_send())   # a server may watch conn.pending_bytes and
                                             # conn.write_paused to pause a producer
        if conn.should_close_tcp:            # RFC 6455 7.1.1: the server closes TCP first
            break
        deadline = conn.next_deadline()      # (when, ws.WebSocketTimer.CLOSE / PING / PONG) or None
        if deadline is not None and deadline[0] <= now:
            conn.handle_timeout(now)         # queues a ping, or fails/gives up: loop again
            continue
        data = sock.recv(65536)              # with a timeout up to the deadline
        conn.receive_data(data, now)         # b"" = EOF: events() yields ConnectionLost
    sock.close()

To close: ``conn.send(ws.Close(1000, "bye"), now)``, send the bytes, keep
reading until ``events()`` yields the peer's ``Close`` (then
``should_close_tcp`` is true) or ``WebSocketTimer.CLOSE`` expires. A peer's close is
answered by the connection itself; after it (state ``CLOSED``) ``send`` raises
``InvalidSend``, so producers check ``conn.state is ws.WebSocketState.OPEN``.

Client side: :func:`make_key` (from 16 bytes of ``os.urandom``),
:func:`client_request_headers`, :func:`check_server_response`, then
``Connection(Role.CLIENT, deflate=negotiated.deflate, mask_source=os.urandom)``.
"""

from tether.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from tether.websocket.connection import Connection, Role, WebSocketState, WebSocketTimer
from tether.websocket.deflate import DeflateOptions
from tether.websocket.errors import (
    FrameError,
    HandshakeError,
    InvalidCloseFrame,
    InvalidPayload,
    InvalidSend,
    MessageTooBig,
    UpgradeRequired,
)
from tether.websocket.events import (
    Binary,
    Close,
    ConnectionLost,
    Event,
    Ping,
    Pong,
    Text,
    WebSocketSendEvent,
)
from tether.websocket.handshake import (
    Accepted,
    Negotiated,
    Rejected,
    RequestLike,
    accept_key,
    check_server_response,
    client_request_headers,
    make_key,
    server_handshake,
    wants_websocket,
)

# The names these had before 0.2, when ``tether.http1`` exported a ``State`` and a ``Timer`` of
# its own with other members, and both exported a ``SendEvent``; and ``DeflateParams``, the agreed
# form of what is now one class. Deprecated aliases, kept so old imports keep working.
State = WebSocketState
Timer = WebSocketTimer
SendEvent = WebSocketSendEvent
DeflateParams = DeflateOptions

__all__ = [
    "Accepted",
    "Binary",
    "Close",
    "Connection",
    "ConnectionLost",
    "DeflateOptions",
    "Event",
    "FrameError",
    "HandshakeError",
    "InvalidCloseFrame",
    "InvalidPayload",
    "InvalidSend",
    "LocalProtocolError",
    "MessageTooBig",
    "Negotiated",
    "Ping",
    "Pong",
    "ProtocolError",
    "Rejected",
    "RemoteProtocolError",
    "RequestLike",
    "Role",
    "Text",
    "UpgradeRequired",
    "WebSocketSendEvent",
    "WebSocketState",
    "WebSocketTimer",
    "accept_key",
    "check_server_response",
    "client_request_headers",
    "make_key",
    "server_handshake",
    "wants_websocket",
]
