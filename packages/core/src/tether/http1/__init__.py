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

from tether.http1._client import ClientConnection, InvalidResponse, ResponseTimeout
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
from tether.http1._send import date_header
from tether.http1._state import State, Timer

__all__ = [
    "NEED_DATA",
    "PAUSED",
    "ClientConnection",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
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
    "State",
    "Timer",
    "date_header",
]
