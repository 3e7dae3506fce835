"""The ASGI ``receive``/``send`` pair of one HTTP request, over the connection's :class:`Owner`.

The response's rules are the core's :class:`tether.serving_cycle.ResponseCycle`; this module
moves its bytes and reads the request body within the core's deadlines.
"""

from __future__ import annotations

import contextlib
import os

import anyio
from anyio import EndOfStream

from tether.http1 import Data, EndOfMessage, InformationalResponse, Request, Response
from tether.serving_cycle import CyclePhase, ResponseCycle
from tether.serving_driver import Next
from tether_asyncio._state import Owner, access_log, error_log
from tether_asyncio._types import READ_SIZE, STREAM_GONE, ClientDisconnected, Message
from tether_server.tagging import log_access

# Bound once: an Enum class attribute is slow to read on Python 3.11 (EnumType.__getattr__).
_WAITING = CyclePhase.WAITING
_COMPLETE = CyclePhase.COMPLETE
_READ = Next.READ
_CLOSE = Next.CLOSE


def _disconnect() -> Message:
    return {"type": "http.disconnect"}


def new_response(owner: Owner, request: Request) -> ResponseCycle:
    """The core's cycle of ``request``'s response, with the server's fields and, with a
    tagging option on, the request's tag. (The HTTP loop makes an untagged one itself.)"""
    state = owner.state
    tagger = state.tagger
    tag = None if tagger is None else tagger.tag(request.headers)
    return ResponseCycle(
        owner.conn,
        request,
        owner.client_text,
        date=state.response_date,
        server=state.server_header,
        extra=() if tag is None else tag.headers,
        tag=tag,
    )


class RequestCycle:
    """The ``receive``/``send`` pair of one HTTP request; the response's rules are the core's
    :class:`tether.serving_cycle.ResponseCycle` (:attr:`response`)."""

    __slots__ = (
        "body_done",
        "disconnected",
        "failed",
        "owner",
        "response",
        "trailer_fields",
        "wait_scope",
    )

    def __init__(self, owner: Owner, response: ResponseCycle) -> None:
        """``response`` is the core's cycle of the request (see :func:`new_response`)."""
        self.owner = owner
        self.response = response
        self.failed = False
        self.body_done = False
        #: The app was given ``http.disconnect``: its returning early is then not its fault.
        self.disconnected = False
        self.wait_scope: anyio.CancelScope | None = None
        #: ``http.response.trailers`` fields so far (None until the first such message).
        self.trailer_fields: list[tuple[bytes, bytes]] | None = None

    async def send(self, message: Message) -> None:
        """The ASGI ``send`` callable."""
        kind = message["type"]
        owner = self.owner
        response = self.response
        if owner.closed:
            raise ClientDisconnected("the client has disconnected")
        if kind == "http.response.body":
            body = message.get("body", b"")
            out = response.body(body, message.get("more_body", False))
            if response.phase is _COMPLETE:
                self._finished()
            if out:
                fast = owner.fast
                try:
                    # owner.write(out), inlined for a FastStream (one coroutine less per
                    # response): owner.closed was tested above, and nothing awaited since.
                    if fast is None:
                        await owner.write(out)
                    elif fast.write(out):
                        await fast.flush()
                except STREAM_GONE as exc:  # ClientDisconnected (an OSError) included
                    response.sent -= len(body)
                    raise owner.lost(exc) from None
        elif kind == "http.response.start":
            if response.phase is not _WAITING:
                raise RuntimeError("the response has already started")
            # Shutting down: tell the client this connection ends with this response.
            response.closing = owner.state.shutting_down
            response.start(
                message["status"],
                message.get("headers", ()),
                trailers=bool(message.get("trailers")),
                ignore_transfer_encoding=True,
            )
        elif kind == "http.response.trailers":
            if not response.trailers or response.complete:
                raise RuntimeError("trailers were not announced in http.response.start")
            fields = self.trailer_fields
            if fields is None:
                fields = self.trailer_fields = []
            fields.extend(message.get("headers", ()))
            if not message.get("more_trailers", False):
                await self._write(response.end(fields), 0)
        elif kind == "http.response.pathsend":
            path = message["path"]
            if not os.path.isabs(path):
                raise ValueError(f"pathsend needs an absolute path, got {path!r}")
            # No further than the declared Content-Length: a file that grows meanwhile (a log
            # under a static directory) must not turn a sound response into the core's error.
            room = response.file_room
            async with await anyio.open_file(path, "rb") as file:
                while room is None or room > 0:
                    chunk = await file.read(READ_SIZE if room is None else min(READ_SIZE, room))
                    if not chunk:
                        break
                    if room is not None:
                        room -= len(chunk)
                    await self._write(response.body(chunk, True), len(chunk))
            await self._write(response.body(b"", False), 0)
        elif kind == "http.response.early_hint":
            if response.phase is not _WAITING:
                raise RuntimeError("http.response.early_hint after http.response.start")
            # One Link field per link (RFC 8297); not to HTTP/1.0 clients, which may not
            # expect an interim response (RFC 9110 15.2).
            if response.request.http_version == b"1.1":
                headers = [(b"link", bytes(link)) for link in message.get("links", ())]
                if headers:
                    await owner.write(owner.conn.send(InformationalResponse(103, headers)))
        else:
            raise RuntimeError(f"unexpected ASGI message type {kind!r} in an HTTP response")

    async def _write(self, out: bytes, size: int) -> None:
        # The body branch of send() is this, inlined (one coroutine less per response).
        if self.response.phase is _COMPLETE:
            self._finished()
        if out:
            try:
                await self.owner.write(out)
            except ClientDisconnected:
                self.response.sent -= size
                raise

    async def send_canned(self, response: Response, body: bytes) -> None:
        """Send a complete server-made response (503 overload, 500 app failure)."""
        out = self.response.canned(response, body)
        if out is None:
            self.owner.closed = True
            return
        self._finished()
        with contextlib.suppress(ClientDisconnected):
            await self.owner.write(out)

    def _finished(self) -> None:
        # Called just before the last bytes are written: the access line is then logged
        # before the client can see the response end (and whatever the write does).
        if self.wait_scope is not None:
            self.wait_scope.cancel()
        if self.owner.state.access_log:
            log_access(access_log, self.response)

    async def receive(self) -> Message:
        """The ASGI ``receive`` callable."""
        if self.response.complete or self.disconnected or self.owner.closed:
            self.disconnected = True
            return _disconnect()
        if not self.body_done:
            return await self._read_body()
        return await self._wait_for_disconnect()

    async def _read_body(self) -> Message:
        owner = self.owner
        driver = owner.driver
        clock = owner.state.clock
        if self.response.phase is _WAITING:
            out = driver.continue_bytes()
            if out:
                try:
                    await owner.write(out)
                except ClientDisconnected:
                    self.disconnected = True
                    return _disconnect()
        while True:
            event = driver.next_event(clock)
            chunks: list[bytes] = []
            while type(event) is Data:
                chunks.append(event.data)
                event = driver.next_event(clock)
            if event is _CLOSE:
                # A broken or oversized body (what came before it is dropped): answer it if
                # no response started, and tell the app the client is gone.
                if driver.output and not self.response.committed:
                    await owner.close_with_output()
                    self.response.phase = _COMPLETE
                elif driver.output:
                    error_log.debug("connection %d: bad request body: %s", owner.id, driver.reason)
                    owner.closed = True
                self.disconnected = True
                return _disconnect()
            if type(event) is EndOfMessage:
                self.body_done = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            if chunks:
                return {"type": "http.request", "body": b"".join(chunks), "more_body": True}
            if event is not _READ or not await self._fill():
                self.disconnected = True
                return _disconnect()
            clock = owner.state.clock

    async def _fill(self) -> bool:
        """Read more body bytes within the core's body deadline; False when the peer is gone."""
        owner = self.owner
        driver = owner.driver
        while True:
            deadline = driver.deadline()
            # Expired with no wait of ours to notice: an app that polls (each receive in a
            # scope cancelled beforehand) never lets the scope below catch the deadline.
            if (
                deadline is not None
                and deadline <= anyio.current_time()
                and driver.timeout(anyio.current_time()) is _CLOSE
            ):
                with anyio.CancelScope(shield=True):  # the write is bounded (1 s)
                    await owner.close_with_output()
                return False
            with anyio.CancelScope(
                deadline=float("inf") if deadline is None else deadline
            ) as scope:
                try:
                    data = await owner.stream.receive(READ_SIZE)
                except EndOfStream:
                    data = b""
                except STREAM_GONE:
                    owner.closed = True
                    return False
            if not scope.cancelled_caught:
                break
            if driver.timeout(anyio.current_time()) is _CLOSE:
                # Too slow (a stall, or below --min-body-rate): the core's 408, if due.
                await owner.close_with_output()
                return False
        if driver.receive(data, owner.state.clock) is _CLOSE:
            await owner.close_with_output()
            return False
        return True

    async def _wait_for_disconnect(self) -> Message:
        """Block until the client goes away, the response completes, or the server shuts down
        while the response streams. Bytes that arrive meanwhile (pipelined requests) go to the
        core's buffer; reading stops before that buffer's limit."""
        owner = self.owner
        driver = owner.driver
        state = owner.state
        response = self.response
        conn = owner.conn
        # Bounded by what the core holds, not by what this wait read: pipelined bytes left by
        # earlier requests' waits count too (a fresh budget per wait overflowed the buffer on
        # the second listening request, and the core's refusal cut a healthy response).
        limit = state.limits.max_buffered_bytes // 2
        with anyio.CancelScope() as scope:
            self.wait_scope = scope
            while not driver.eof and not (state.shutting_down and response.phase is not _WAITING):
                if conn.buffered_bytes >= limit:
                    await anyio.sleep_forever()
                try:
                    data = await owner.stream.receive(READ_SIZE)
                except EndOfStream:
                    data = b""
                except STREAM_GONE:
                    owner.closed = True
                    break
                if driver.receive(data, state.clock) is _CLOSE:
                    owner.closed = True  # bytes after EOF, or past the buffer: not a request
                    break
                if not data:
                    break
        self.wait_scope = None
        self.disconnected = True
        return _disconnect()

    def shutdown(self) -> None:
        """Graceful shutdown: an app streaming a response (server-sent events) that waits for
        ``http.disconnect`` gets it now; not before its response started (Django, and others,
        cancel the view when told of a disconnect, and an in-flight request must finish)."""
        if self.wait_scope is not None and self.response.phase is not _WAITING:
            self.wait_scope.cancel()
