"""What a server does with each answer of the core, decided once for every server (sans I/O).

A server reads bytes, gives them to a :class:`~tether.http1.ServerConnection` and asks for
events. What each answer *means for the server* is the same everywhere, and easy to get subtly
wrong: ``NEED_DATA`` after the peer's EOF means the connection is over; a ``ProtocolError`` is
answered with the core's error response and a close (never a traceback); a request whose
declared body exceeds the server's cap is refused before a ``100 Continue`` invites it; an
expired deadline may owe the client a 408; after a response the connection is reused only if
the core says so and the server is not shutting down. :class:`ConnectionDriver` makes these
decisions and returns them as a :class:`Next` (read, wait for the application, close after
sending :attr:`ConnectionDriver.output`), so a server only moves bytes and time.

The driver never raises for the peer's mistakes; it reads no clock (``now`` is an argument).
"""

from __future__ import annotations

import enum
from operator import itemgetter

from tether.errors import ContentTooLarge, ProtocolError
from tether.http1 import (
    NEED_DATA,
    PAUSED,
    Data,
    EndOfMessage,
    Headers,
    InformationalResponse,
    Request,
    ServerConnection,
    State,
)

__all__ = ["ConnectionDriver", "Next"]


class Next(enum.Enum):
    """What the server should do now."""

    #: The core needs bytes: read from the peer.
    READ = "read"
    #: The request belongs to the application until its response is complete: read nothing.
    WAIT = "wait"
    #: Send :attr:`ConnectionDriver.output` (possibly empty), then close.
    CLOSE = "close"


_CONTENT_LENGTH = b"content-length"
_name = itemgetter(0)
# Bound once: on Python 3.11 reading a member off an Enum class goes through
# EnumType.__getattr__'s slow path, and these are read for every request.
_READ = Next.READ
_WAIT = Next.WAIT
_CLOSE = Next.CLOSE
_IDLE = State.IDLE


class ConnectionDriver:
    """One server connection's decisions around its :class:`~tether.http1.ServerConnection`.

    ``body_cap`` is the most body bytes the server will take for one request (None: only the
    core's ``Limits.max_body_size`` applies); a larger declared ``Content-Length`` is refused
    with 413 as soon as the head arrives.
    """

    __slots__ = ("body_cap", "conn", "eof", "output", "reason")

    def __init__(self, conn: ServerConnection, body_cap: int | None = None) -> None:
        self.conn = conn
        self.body_cap = body_cap
        #: The peer ended its side (a read returned no bytes).
        self.eof = False
        #: What to send before closing, once a method returned :attr:`Next.CLOSE`.
        self.output = b""
        #: Why the driver said :attr:`Next.CLOSE` (for a debug log line).
        self.reason = ""

    def receive(self, data: bytes, now: float) -> Next | None:
        """Give the core bytes read from the peer (``b""``: its EOF).

        Returns :attr:`Next.CLOSE` if the bytes break the protocol, else None: then take
        events with :meth:`next_event`.
        """
        if not data:
            self.eof = True
        try:
            self.conn.receive_data(data, now)
        except ProtocolError as exc:
            return self.refuse(exc)
        return None

    def next_event(self, now: float) -> Request | Data | EndOfMessage | Next:
        """The core's next request event, or what to do when there is none.

        :attr:`Next.READ` when the core needs bytes (:attr:`Next.CLOSE` if the peer already
        ended), :attr:`Next.WAIT` while the response is in progress, :attr:`Next.CLOSE` on a
        protocol error (its response is :attr:`output`) or once the connection is done.
        """
        try:
            event = self.conn.next_event(now)
        except ProtocolError as exc:
            return self.refuse(exc)
        if isinstance(event, (Data, EndOfMessage)):
            return event
        if isinstance(event, Request):
            cap = self.body_cap
            # Whether there is a Content-Length at all is found out in C (most requests have
            # none), before a Python turn per field finds it.
            if cap is not None and _CONTENT_LENGTH in map(_name, event.headers):
                for name, value in event.headers:
                    if name == _CONTENT_LENGTH and value.isdigit() and int(value) > cap:
                        # Refused before a 100 Continue invites it, or a byte of it is stored.
                        return self.refuse(ContentTooLarge(f"the body exceeds {cap} bytes"))
            return event
        if event is NEED_DATA:
            if self.eof:
                return self._close("the peer closed its side")
            return _READ
        if event is PAUSED:
            return _WAIT
        return self._close("the connection is done")  # ConnectionClosed

    def continue_bytes(self) -> bytes:
        """``100 Continue`` if the client waits for it before sending the body, else ``b""``.

        A server that reads the body whatever the application does sends it at once.
        """
        if self.conn.expects_continue:
            return self.conn.send(InformationalResponse(100))
        return b""

    def refuse(self, exc: ProtocolError, headers: Headers = ()) -> Next:
        """Answer ``exc`` (the peer's mistake, or a limit) with the core's error response,
        carrying ``headers`` too (a ``Retry-After``)."""
        try:
            out = self.conn.error_response(exc, headers)
        except ProtocolError:
            out = b""
        return self._close(f"{exc} (answering {exc.status_hint})", out)

    def deadline(self) -> float | None:
        """The core's next deadline (:meth:`timeout` acts on it), or None."""
        deadline = self.conn.next_deadline()
        return None if deadline is None else deadline[0]

    def timeout(self, now: float) -> Next | None:
        """:attr:`Next.CLOSE` if a deadline passed by ``now`` (:attr:`output` may hold a 408),
        else None (a spurious wake-up)."""
        deadline = self.conn.next_deadline()
        if deadline is None or deadline[0] > now:
            return None
        out = self.conn.handle_timeout(now)
        if out is None:
            return None
        return self._close(f"{deadline[1].name.lower()} timeout", out)

    def finish(self, now: float, *, closing: bool = False) -> Next | None:
        """The response is complete: reuse the connection or close it.

        ``closing``: the server is shutting down and wants this connection gone. Returns
        :attr:`Next.READ` when the connection waits for a next request and no byte of it is
        buffered (the common case: only its keep-alive deadline runs), :attr:`Next.CLOSE`, or
        None when bytes are buffered (pipelined requests, an unread body being drained): take
        events with :meth:`next_event`.
        """
        conn = self.conn
        if closing or not conn.keep_alive:
            return self._close("the response ends the connection")
        try:
            reuse = conn.start_next_cycle(now)
        except ProtocolError:
            reuse = False
        if not reuse:
            return self._close("the connection cannot be reused")
        if conn.their_state is _IDLE and not conn.buffered_bytes and not self.eof:
            return _READ
        return None

    def _close(self, reason: str, output: bytes = b"") -> Next:
        self.reason = reason
        self.output = output
        return _CLOSE
