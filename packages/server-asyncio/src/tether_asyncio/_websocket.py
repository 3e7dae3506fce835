"""One ASGI WebSocket session over the core's :mod:`tether.websocket` connection.

The handshake, every frame and the scope (:mod:`tether.serving_asgi`) are the core's; this
module runs the app and answers the handshake (the ``101``, a denial, or the 403/500 of an app
that closed or failed before accepting). After the ``101``,
:class:`tether_asyncio._ws_io.WebSocketIO` moves messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
from anyio import EndOfStream

from tether import websocket as ws
from tether.errors import RemoteProtocolError
from tether.http1 import Request, Response
from tether.serving_asgi import handshake_refusal, websocket_scope
from tether.serving_websocket import SERVER_DEFLATE
from tether_asyncio._exchange import RequestCycle, new_response
from tether_asyncio._state import Owner, access_log, error_log
from tether_asyncio._types import READ_SIZE, STREAM_GONE, ClientDisconnected, Message
from tether_asyncio._ws_io import WebSocketIO
from tether_server.tagging import app_entries, log_access

if TYPE_CHECKING:
    from anyio.abc import TaskGroup


async def serve_websocket(owner: Owner, request: Request) -> None:
    """Run one WebSocket request (upgrade or denial); the connection always ends after it (on
    a protocol error, with the driver's output, which the connection sends)."""
    state = owner.state
    # The HTTP side of the handshake: the 101, a denial, or a canned 400/426/403/500.
    http = RequestCycle(owner, new_response(owner, request))
    deflate = SERVER_DEFLATE if state.config.ws_per_message_deflate else None
    check = ws.server_handshake(request, deflate=deflate)
    if isinstance(check, ws.Rejected):
        # Not a valid version-13 upgrade: the core's 400/426, without calling the app, and
        # before any content is read (an upgrade with content is refused: the server would
        # otherwise drain a body nobody wants, as long as the client keeps sending it).
        await http.send_canned(Response(check.status_code, check.headers), check.body)
        return
    # The upgrade request's end lets the core switch protocols (it has no content).
    while not http.body_done:
        if (await http.receive())["type"] == "http.disconnect":
            return

    client, scheme = owner.client, owner.scheme
    if state.proxies is not None:
        client, scheme = state.proxies.resolve(request.headers, client, scheme)
    try:
        scope = websocket_scope(
            request,
            scheme=scheme,
            server=owner.server,
            client=client,
            root_path=state.root_path,
            state=state.app_state,
            tls=owner.tls,
        )
    except RemoteProtocolError as exc:
        owner.driver.refuse(exc)
        return
    if http.response.tag is not None:
        scope["extensions"].update(app_entries(http.response))
    session = ASGIWebSocket(owner, request, http, deflate)
    owner.websocket = session
    state.in_flight += 1
    try:
        await session.run(scope)
    finally:
        state.in_flight -= 1
        owner.websocket = None


class ASGIWebSocket:
    """The ASGI ``receive``/``send`` pair of one WebSocket connection."""

    def __init__(
        self,
        owner: Owner,
        request: Request,
        http: RequestCycle,
        deflate: ws.DeflateOptions | None,
    ) -> None:
        self.owner = owner
        self.request = request
        self.deflate = deflate
        #: The session after the ``101``.
        self.io: WebSocketIO | None = None
        self.connect_sent = False
        #: The app closed (or denied) before accepting.
        self.refused = False
        #: A denial response started with ``websocket.http.response.start``.
        self.denial: RequestCycle | None = None
        self.disconnect: Message | None = None
        #: The handshake was answered or the client left: what a ``receive()`` before
        #: ``websocket.accept`` waits for (Quart receives in one task and accepts in another).
        self.answered = anyio.Event()
        #: The watch for the client leaving before the handshake is answered (see _watch).
        self._watch_scope: anyio.CancelScope | None = None
        self._watch_done = anyio.Event()
        #: Bytes the client sent before the 101 (kept for the session, not thrown away).
        self._early = b""
        self.group: TaskGroup | None = None
        #: The HTTP side of the handshake: the 101, a denial, or the canned 403/500.
        self.http = http
        self.started = 0.0

    async def run(self, scope: dict[str, Any]) -> None:
        """Call the app; finish the handshake or the close it left undone."""
        owner = self.owner
        failed = False
        async with anyio.create_task_group() as group:
            self.group = group
            try:
                await owner.state.app(scope, self.receive, self.send)
            except Exception as exc:
                failed = True
                gone = self.disconnect is not None or owner.closed
                if self.io is not None:
                    # A client that sends messages and its close frame in one go (or resets
                    # the connection) ends the session while the app answers the messages:
                    # the app's send then raises, and that is the client leaving, not a
                    # failure of the app.
                    gone = gone or self.io.ended_by_client
                if not (isinstance(exc, ClientDisconnected) and gone):
                    error_log.error(
                        "connection %d: exception in ASGI application (WebSocket)",
                        owner.id,
                        exc_info=exc,
                    )
            io = self.io
            if self.denial is not None:
                if not self.denial.response.complete:
                    owner.conn.send_failed()
            elif io is None:
                if not owner.closed and not self.refused:
                    # ASGI: returning (or failing) before accepting is an HTTP 403 (or 500).
                    await self._refuse(failed)
            else:
                io.app_returned()
                await io.close(1011 if failed else 1000, "")
                if not owner.closed:
                    await io.reader_done.wait()
            if io is None or not await io.stop():
                # A closed socket (a write timeout) may leave the reader waiting for bytes.
                group.cancel_scope.cancel()
        if io is not None and owner.state.access_log:
            ending = (io.rules.ending_code, anyio.current_time() - self.started)
            log_access(access_log, self.http.response, websocket=ending)

    async def _refuse(self, failed: bool) -> None:
        """Answer the handshake with a 403 (the app closed) or a 500 (it failed); the connection
        then ends, and a ``receive()`` waiting for the answer gets ``websocket.disconnect``."""
        self.refused = True
        await self._stop_watching()
        await self.http.send_canned(*handshake_refusal(failed))
        self._set_disconnect(1006)
        self.answered.set()

    def going_away(self) -> None:
        """Server shutdown: start the closing handshake with 1001 (RFC 6455 7.4.1)."""
        if self.io is not None:
            self.io.going_away()

    def _set_disconnect(self, code: int) -> None:
        if self.disconnect is None:
            self.disconnect = {"type": "websocket.disconnect", "code": code, "reason": ""}

    async def receive(self) -> Message:
        """The ASGI ``receive`` callable."""
        io = self.io
        if io is not None:
            return await io.receive()
        if not self.connect_sent:
            self.connect_sent = True
            return {"type": "websocket.connect"}
        if not self.answered.is_set():
            # Wait for the app's answer (or the client leaving) without reading the
            # socket from here: the frames after the 101 are the session's.
            if self._watch_scope is None and self.group is not None:
                self._watch_scope = anyio.CancelScope()
                self.group.start_soon(self._watch, self._watch_scope)
            await self.answered.wait()
        if self.io is not None:
            return await self.io.receive()
        self._set_disconnect(1006)
        assert self.disconnect is not None
        return self.disconnect

    async def _watch(self, scope: anyio.CancelScope) -> None:
        """Notice the client leaving before the app answers the handshake (until ``scope`` is
        cancelled). Bytes sent before the 101 are kept (up to one read's worth) for the session."""
        owner = self.owner
        try:
            with scope:
                try:
                    while len(self._early) < READ_SIZE:
                        self._early += await owner.stream.receive(READ_SIZE)
                    await anyio.sleep_forever()
                except (EndOfStream, *STREAM_GONE):
                    owner.closed = True
                    self._set_disconnect(1006)
                    self.answered.set()
        finally:
            self._watch_done.set()

    async def _stop_watching(self) -> None:
        """End the watch before anything else reads the socket."""
        if self._watch_scope is not None:
            self._watch_scope.cancel()
            await self._watch_done.wait()

    async def send(self, message: Message) -> None:
        """The ASGI ``send`` callable."""
        kind = message["type"]
        io = self.io
        if kind == "websocket.send":
            if io is None:
                raise RuntimeError("websocket.send before websocket.accept")
            text = message.get("text")
            await io.send(ws.Binary(message.get("bytes") or b"") if text is None else ws.Text(text))
        elif kind == "websocket.accept":
            await self._accept(message)
        elif kind == "websocket.close":
            if io is not None:
                await io.close(message.get("code") or 1000, message.get("reason") or "")
            elif self.denial is not None:
                raise RuntimeError("websocket.close after websocket.http.response.start")
            elif not self.refused:
                # The 403 goes out now: the app may wait in receive() for the disconnect
                # (Django Channels closes in connect(), then reads until disconnect).
                await self._refuse(failed=False)
        elif kind in ("websocket.http.response.start", "websocket.http.response.body"):
            if io is not None or self.refused:
                raise RuntimeError(f"{kind} after the handshake was answered")
            if self.denial is None:
                self.denial = self.http
                self.answered.set()
            await self.denial.send({**message, "type": kind.replace("websocket.", "", 1)})
        else:
            raise RuntimeError(f"unexpected ASGI message type {kind!r} in a WebSocket")

    async def _accept(self, message: Message) -> None:
        if self.io is not None or self.refused or self.denial is not None:
            raise RuntimeError("websocket.accept after the handshake was answered")
        owner = self.owner
        state = owner.state
        subprotocol = message.get("subprotocol")
        result = ws.server_handshake(
            self.request,
            subprotocols=[subprotocol] if subprotocol else (),
            deflate=self.deflate,
        )
        assert isinstance(result, ws.Accepted)  # validated before the app was called
        if subprotocol and result.subprotocol != subprotocol:
            # Accepting without the header would be a session the app did not ask for.
            raise RuntimeError(
                f"websocket.accept: the client did not offer the subprotocol {subprotocol!r}"
            )
        await self._stop_watching()
        out = self.http.response.switch([*result.headers, *message.get("headers", ())])
        if state.metrics is not None:
            state.metrics.websocket()
        self.started = anyio.current_time()
        conn = ws.Connection(
            ws.Role.SERVER, deflate=result.deflate, limits=state.limits, now=state.clock
        )
        trailing = owner.conn.trailing_data + self._early
        if trailing:
            conn.receive_data(trailing, state.clock)
        io = WebSocketIO(owner, conn, state.config.ws_max_queue)
        try:
            await owner.write(out)
        except ClientDisconnected:
            self._set_disconnect(1006)
            self.refused = True  # no session: a receive() waiting in another task ends
            raise
        finally:
            self.answered.set()
        self.io = io
        assert self.group is not None
        io.start(self.group)
