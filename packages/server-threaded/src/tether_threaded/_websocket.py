"""WebSocket for WSGI applications: a small blocking API over the core's sans-I/O connection.

A WSGI application sees ``environ["tether.websocket"]`` (an :class:`Upgrade`) on a request that
asks to upgrade. ``accept()`` answers ``101`` and returns a :class:`WebSocket` whose
``receive()``, ``send()`` and ``close()`` block the application's worker thread; the loop keeps
reading frames, answering pings and closes (the core does), and firing the core's timers. The
application then returns any iterable; it is closed and ignored::

    def app(environ, start_response):
        ws = environ["tether.websocket"].accept()
        while True:
            ws.send(ws.receive())   # echo until the client closes (WebSocketClosed)

:func:`websocket_app` turns a ``handler(ws)`` into such an application.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence

from tether import websocket as ws_core
from tether.http1 import Request, Response
from tether.serving_cycle import ResponseCycle
from tether.serving_websocket import SERVER_DEFLATE, WebSocketSession
from tether.serving_wsgi import Environ, StartResponse
from tether_server.tagging import log_access
from tether_threaded._connection import Connection
from tether_threaded._input import ClientDisconnected
from tether_threaded._transport import READ, Phase

_access = logging.getLogger("tether.access")


class WebSocketClosed(Exception):
    """The WebSocket is closed: ``code`` and ``reason`` are the peer's (1006: connection lost)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"WebSocket closed with code {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


class WebSocket:
    """A WebSocket as a WSGI application uses it, from its worker thread."""

    __slots__ = ("_conn", "_session", "subprotocol")

    def __init__(
        self, conn: Connection, session: WebSocketSession, subprotocol: str | None
    ) -> None:
        self._conn = conn
        self._session = session
        #: The subprotocol agreed in the handshake, or None.
        self.subprotocol = subprotocol

    def receive(self) -> str | bytes:
        """Wait for the next message: ``str`` for text, ``bytes`` for binary.

        Raises :class:`WebSocketClosed` once the peer closed (or the connection was lost).
        """
        session, conn = self._session, self._conn
        with conn.lock:
            while (message := session.take()) is None:
                if conn.closed:
                    raise WebSocketClosed(1006, "connection lost")
                conn.cond.wait()
            if isinstance(message, ws_core.Close | ws_core.ConnectionLost):
                # Left in place: every later receive() raises the same.
                raise WebSocketClosed(message.code, getattr(message, "reason", ""))
            conn.ws_resume(session)
            if conn.loop.metrics is not None:
                conn.loop.metrics.message(incoming=True)
            return message

    def send(self, data: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message; waits while the client lags."""
        conn = self._conn
        event = ws_core.Text(data) if isinstance(data, str) else ws_core.Binary(bytes(data))
        with conn.lock:
            ws = self._session.ws
            if ws.state is not ws_core.State.OPEN or conn.closing:
                raise WebSocketClosed(ws.close_code or 1006, ws.close_reason)
            ws.send(event, time.monotonic())
            if conn.loop.metrics is not None:
                conn.loop.metrics.message(incoming=False)
            try:
                conn.write(ws.bytes_to_send())
            except ClientDisconnected:
                raise WebSocketClosed(1006, "connection lost") from None

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (the loop completes it and closes TCP)."""
        with self._conn.lock:
            self._conn.ws_close(time.monotonic(), code, reason)


class Upgrade:
    """``environ["tether.websocket"]``: accept (or refuse) the WebSocket upgrade."""

    __slots__ = ("_conn", "_cycle", "_request", "_session", "_started", "accepted")

    def __init__(self, conn: Connection, request: Request, cycle: ResponseCycle) -> None:
        self._conn = conn
        self._request = request
        #: The HTTP response the handshake answers (the 101, or the refusal).
        self._cycle = cycle
        self._session: WebSocketSession | None = None
        self._started = 0.0
        #: ``accept()`` succeeded: the response is the ``101``, the app's result is ignored.
        self.accepted = False

    def accept(self, subprotocols: Sequence[str] = (), compress: bool = True) -> WebSocket:
        """Validate the handshake, answer ``101`` and return the :class:`WebSocket`.

        ``subprotocols`` are the ones the application speaks, preferred first. An invalid
        handshake is answered 426/400 here and raises :class:`tether.websocket.HandshakeError`.
        """
        conn = self._conn
        cycle = self._cycle
        result = ws_core.server_handshake(
            self._request,
            subprotocols=subprotocols,
            deflate=SERVER_DEFLATE if compress else None,
        )
        with conn.lock:
            if conn.closing:
                raise ClientDisconnected("the connection is closing")
            now = time.monotonic()
            if isinstance(result, ws_core.Rejected):
                out = cycle.canned(Response(result.status_code, result.headers), result.body)
                if out:
                    conn.write(out)
                    conn.response_done(now)
                raise result.error
            out = cycle.switch(result.headers)
            ws = ws_core.Connection(
                ws_core.Role.SERVER, deflate=result.deflate, limits=conn.loop.limits, now=now
            )
            max_queue = conn.loop.config.ws_max_queue
            session = self._session = conn.session = WebSocketSession(ws, max_queue)
            self._started = now
            conn.phase = Phase.WEBSOCKET
            self.accepted = True
            if conn.loop.metrics is not None:
                conn.loop.metrics.websocket()
            conn.write(out)
            conn.want |= READ  # first: frames sent with the handshake may hold reading back
            trailing = conn.core.trailing_data
            if trailing:
                ws.receive_data(trailing, now)
                conn.ws_process(session, now)
            conn.loop.call_soon(conn, wake=True)
        return WebSocket(conn, session, result.subprotocol)

    def finish(self, code: int = 1000) -> None:
        """The application returned (or failed, ``code=1011``): close if it did not."""
        conn, session = self._conn, self._session
        with conn.lock:
            if session is not None:
                # Messages it will never take must not hold reading (and the close) back.
                session.app_returned()
                conn.ws_resume(session)
            conn.ws_close(time.monotonic(), code, "" if code == 1000 else "internal error")

    def log_access(self, enabled: bool) -> None:
        """The session's access line, as it ends: 101, its close code and its duration."""
        session = self._session
        if not enabled or session is None or not _access.isEnabledFor(logging.INFO):
            return
        duration = time.monotonic() - self._started
        log_access(_access, self._cycle, websocket=(session.ending_code, duration))


def websocket_app(
    handler: Callable[[WebSocket], None],
    subprotocols: Sequence[str] = (),
    compress: bool = True,
) -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    """A WSGI application that accepts every WebSocket upgrade and runs ``handler(ws)``.

    Requests that are not upgrades get ``426 Upgrade Required``.
    """

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        upgrade = environ.get("tether.websocket")
        if upgrade is None:
            body = b"This endpoint speaks WebSocket only.\n"
            start_response(
                "426 Upgrade Required",
                [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
            )
            return [body]
        ws = upgrade.accept(subprotocols, compress)
        with contextlib.suppress(WebSocketClosed):
            handler(ws)
        return []

    return app


__all__ = ["Upgrade", "WebSocket", "WebSocketClosed", "websocket_app"]
