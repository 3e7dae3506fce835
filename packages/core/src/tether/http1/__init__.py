"""The server side of an HTTP/1.1 connection, sans I/O (RFC 9110, RFC 9112).

A :class:`ServerConnection` is fed bytes and gives events; it is given
response events and gives bytes; it is given ``now`` and gives deadlines::

    conn = ServerConnection(Limits(), now=clock())
    conn.receive_data(sock.recv(65536), now=clock())
    while True:
        event = conn.next_event(now=clock())
        if event is NEED_DATA:
            ...  # read more (until conn.next_deadline()), then receive_data()
        elif event is PAUSED:
            ...  # finish the response, then conn.start_next_cycle()
        elif isinstance(event, Request):
            sock.sendall(conn.send(Response(200, [(b"content-length", b"2")])))
            sock.sendall(conn.send(Data(b"ok")) + conn.send(EndOfMessage()))
        ...

:class:`ClientConnection` is the other side, with the same shape: send a
:class:`Request` (and its body), feed the server's bytes, take
:class:`InformationalResponse`, :class:`Response`, :class:`Data` and
:class:`EndOfMessage` events.

Errors raised by ``next_event`` are :class:`tether.errors.RemoteProtocolError`
subclasses carrying ``status_hint``; :meth:`ServerConnection.error_response`
turns one into response bytes.
"""

from tether.http1._client import ClientConnection
from tether.http1._connection import ServerConnection
from tether.http1._events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Headers,
    InformationalResponse,
    ReceiveEvent,
    Request,
    Response,
    SendEvent,
    Signal,
)
from tether.http1._response import InvalidResponse, ResponseTimeout
from tether.http1._send import date_header, reason_phrase
from tether.http1._state import HTTPState, HTTPTimer

# The names these had before 0.2, when ``tether.websocket`` exported a ``State`` and a ``Timer``
# of its own with other members: deprecated aliases, kept so old imports keep working.
State = HTTPState
Timer = HTTPTimer

__all__ = [
    "NEED_DATA",
    "PAUSED",
    "ClientConnection",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "HTTPState",
    "HTTPTimer",
    "Headers",
    "InformationalResponse",
    "InvalidResponse",
    "ReceiveEvent",
    "Request",
    "Response",
    "ResponseTimeout",
    "SendEvent",
    "ServerConnection",
    "Signal",
    "date_header",
    "reason_phrase",
]
