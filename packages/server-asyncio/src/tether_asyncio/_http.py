"""One HTTP/1.1 connection: bytes between the socket and the core, messages to and from the app.

Every protocol decision is the core's (:class:`tether.http1.ServerConnection`, and what its
answers mean for a server, :class:`tether.serving_driver.ConnectionDriver`); this module moves
data and time. The app runs inline in the connection's task, one request at a time, and the
socket is read only when the core or the app asks for bytes: request bodies' back-pressure.
"""

from __future__ import annotations

import contextlib
from functools import partial
from operator import itemgetter
from time import monotonic
from typing import TYPE_CHECKING, Any, cast

import anyio
from anyio import EndOfStream

from tether.errors import BadRequest, RemoteProtocolError, cut_short
from tether.health import Probe
from tether.http1 import Request, ServerConnection, State
from tether.serving import decode_path, split_target
from tether.serving_cycle import RULES, CyclePhase, ResponseCycle
from tether.serving_driver import ConnectionDriver, Next
from tether.websocket.handshake import wants_websocket
from tether_asyncio._exchange import RequestCycle, new_response
from tether_asyncio._state import access_log, error_log
from tether_asyncio._stream import FastStream, WriteTimeout
from tether_asyncio._types import READ_SIZE, STREAM_GONE, ClientDisconnected, Stream
from tether_asyncio._websocket import serve_websocket
from tether_server.accesslog import peer_text
from tether_server.tagging import app_entries, log_access, tagged

if TYPE_CHECKING:
    from tether_asyncio._state import ServerState
    from tether_server.server_metrics import ServerMetrics

#: Whether a request has an ``Upgrade`` field is found out in C (the field names of most
#: requests never are), before :func:`wants_websocket` reads its value.
_UPGRADE = frozenset((b"upgrade",))
_name = itemgetter(0)
# Bound once: an Enum class attribute is slow to read on Python 3.11 (EnumType.__getattr__).
_READ = Next.READ
_CLOSE = Next.CLOSE
_IDLE = State.IDLE
_COMPLETE = CyclePhase.COMPLETE


class HTTPConnection:
    """Serve HTTP/1.1 requests on one accepted stream until it closes."""

    __slots__ = (
        "cancel_scope",
        "cell",
        "client",
        "client_text",
        "closed",
        "conn",
        "cycle",
        "driver",
        "fast",
        "id",
        "idle",
        "linger",
        "scheme",
        "server",
        "state",
        "stream",
        "tls",
        "websocket",
    )

    def __init__(
        self,
        state: ServerState,
        stream: Stream,
        *,
        client: tuple[str, int] | None,
        server: tuple[str, int | None] | None,
        tls: dict[str, Any] | None,
    ) -> None:
        self.state = state
        self.stream = stream
        self.conn = ServerConnection(limits=state.limits, now=state.clock)
        #: What each answer of the core means here; its ``output`` is sent before closing.
        self.driver = ConnectionDriver(self.conn)
        self.id = state.connection_id()
        #: --metrics-port: the loop thread's cell, written with no per-request lookup.
        self.cell = None if state.metrics is None else state.metrics.cell()
        #: Cancelled to end an idle connection (see :meth:`interrupt`); None for a FastStream,
        #: which can be interrupted itself (a cancel scope costs ~600 bytes per connection).
        self.cancel_scope = None if type(stream) is FastStream else anyio.CancelScope()
        #: The stream when it is a FastStream: written without a coroutine per write.
        self.fast = stream if type(stream) is FastStream else None
        #: True while the connection waits for the next request's bytes (nothing in the app).
        self.idle = False
        #: The socket is unusable (reset, closed, or an error response ended it).
        self.closed = False
        #: Half-close and drain before closing (after an error response).
        self.linger = False
        self.cycle: RequestCycle | None = None
        #: The WebSocket session after an upgrade (for shutdown with 1001).
        self.websocket: Any = None
        self.client = client
        self.client_text = peer_text(*client) if client else "-"  # "-": a Unix socket peer
        self.server = server
        self.scheme = "https" if tls is not None else "http"
        #: The ASGI TLS extension of this connection (None: plain TCP or a Unix socket).
        self.tls = tls

    # -- the connection loop ---------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until the connection ends; never raises."""
        state = self.state
        state.connections.add(self)
        if state.metrics is not None:
            state.metrics.connection()
        try:
            if self.cancel_scope is None:
                await self._serve()
            else:
                with self.cancel_scope:
                    await self._serve()
            if self.driver.output:  # a 408 (see tick), a refused WebSocket upgrade
                await self.close_with_output()
            if self.linger and not self.driver.eof:
                # Close gently after an error response: half-close, and discard what arrives for
                # a moment (unread input at close sends a RST that can destroy the response).
                budget = RULES.linger_bytes
                with anyio.move_on_after(RULES.linger_seconds), contextlib.suppress(Exception):
                    await self.stream.send_eof()
                    while budget > 0:
                        budget -= len(await self.stream.receive(READ_SIZE))
        except STREAM_GONE:
            pass
        except Exception:
            error_log.exception("connection %d: unexpected server error", self.id)
        finally:
            # The cycle (and a WebSocket session) point back here: let go of them so that the
            # connection's objects are freed now, not by the cyclic collector.
            self.cycle = self.websocket = None
            fast, cell = self.fast, self.cell
            if fast is not None and cell is not None:
                # The stream's byte counts join the metrics as it leaves the open set.
                metrics = cast("ServerMetrics", state.metrics)
                forget = partial(state.connections.discard, self)
                metrics.fold(cell, fast.received, fast.sent, forget)
            else:
                state.connections.discard(self)
            if fast is not None:
                fast.close()  # never waits
            else:
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await self.stream.aclose()

    def tick(self, now: float) -> None:
        """The server's ticker: end an :attr:`idle` connection whose deadline passed (the
        driver keeps the 408 it may owe). (A stalled write is its stream's to time out.)"""
        if self.idle and self.driver.timeout(now) is _CLOSE:
            self.interrupt()

    def interrupt(self) -> None:
        """End an :attr:`idle` connection's wait (a timeout, or shutdown): :meth:`run` then
        sends the driver's output, if any, and closes."""
        if self.cancel_scope is not None:
            self.cancel_scope.cancel()
        else:
            self.stream.interrupt()  # type: ignore[attr-defined]

    async def _serve(self) -> None:
        driver = self.driver
        state = self.state
        stream = self.stream
        cell = self.cell
        app = state.app
        # What every request of this connection reads, bound once (none of it changes while
        # the server runs; the lifespan state is filled in place).
        spend = state.spend_request
        websockets = state.websockets
        screen = state.screen
        root_path = state.root_path
        raw_root = root_path.encode("utf-8")
        limit = state.limit_concurrency
        counting = state.count_in_flight
        # Whether a request may be answered in the app's place other than for CONNECT (a
        # health probe, --limit-concurrency): without either, one test per request.
        screening = screen.active
        probe: Probe | None = None
        app_state = state.app_state
        scheme = self.scheme
        server = self.server
        client = self.client
        # Scope extensions: the server's shared dict, or a dict of its own with "tls".
        tls = self.tls
        extensions = state.extensions if tls is None else {**state.extensions, "tls": tls}
        proxies = state.proxies
        if proxies is not None and not proxies.trusts(client[0] if client is not None else None):
            proxies = None  # what it would answer for every request of an untrusted peer
        tagging = state.tagger is not None
        conn = self.conn
        client_text = self.client_text
        server_header = state.server_header
        # Between requests with nothing buffered, read before asking the core: it then takes
        # its fast path for a whole head, and a head's first bytes start its HEAD timer.
        step: Next | None = _READ
        while True:
            if step is _READ:
                if (
                    state.drain is not None
                    and state.drain.closes_idle(self.conn.request_count)
                    and self.conn.their_state is _IDLE
                ):
                    return
                self.idle = True
                try:
                    data = await stream.receive(READ_SIZE)
                except EndOfStream:
                    data = b""
                except STREAM_GONE:
                    return
                finally:
                    self.idle = False
                if driver.receive(data, state.clock) is _CLOSE:
                    break
            request = driver.next_event(state.clock)
            if type(request) is not Request:
                if request is _READ:
                    step = _READ
                    continue
                # CLOSE (an error response may be due); WAIT only after a 101; body events of
                # a request no longer served.
                break

            # -- one request, inline (a coroutine per request less) ------------------------------
            if spend is not None:
                spend()  # --limit-max-requests
            if cell is not None:
                started = monotonic()  # --metrics-port
            method = request.method
            headers = request.headers
            target = request.target
            try:
                if target[0] == 0x2F and 0x25 not in target:
                    # The common case: "/..." with no "%", nothing to percent-decode (int
                    # needles: ten times cheaper than b"%", see tether.serving.unquote_path).
                    raw_path, _, query = target.partition(b"?")
                    path = raw_path.decode("utf-8")
                else:
                    raw_path, query = split_target(target)
                    path = decode_path(raw_path)
            except UnicodeDecodeError:
                driver.refuse(BadRequest("the request path is not UTF-8"))
                break
            except RemoteProtocolError as exc:
                driver.refuse(exc)
                break
            if screening:
                probe = screen.probe(raw_path)
            # A WebSocket upgrade is a GET (RFC 6455 4.1); other methods skip the header scan.
            # A health probe is answered first (tether.serving_screen), upgrade or not.
            if (
                method == b"GET"
                and websockets
                and probe is None
                and not _UPGRADE.isdisjoint(map(_name, headers))
                and wants_websocket(headers)
            ):
                await serve_websocket(self, request)  # the connection always ends after it
                return
            if root_path:
                path = root_path + path
                raw_path = raw_root + raw_path
            scope: dict[str, Any] = {
                "type": "http",
                # Each scope its own dict: an app that writes to it changes no other request's.
                "asgi": {"version": "3.0", "spec_version": "2.4"},
                "http_version": "1.1" if request.http_version == b"1.1" else "1.0",
                "method": method.decode("ascii"),
                "scheme": scheme,
                "path": path,
                "raw_path": raw_path,
                "query_string": query,
                "root_path": root_path,
                "headers": headers,
                "server": server,
                "client": client,
                "extensions": extensions,
                "state": app_state.copy(),
            }
            if tagging:
                response = new_response(self, request)
                scope["extensions"] = {**extensions, **app_entries(response)}
            else:
                # new_response(), inlined: nothing of the request to read.
                response = ResponseCycle(
                    conn, request, client_text, date=state.response_date, server=server_header
                )
            cycle = RequestCycle(self, response)
            if proxies is not None:
                forwarded, scope["scheme"] = proxies.resolve(headers, client, scheme)
                if forwarded is not client:
                    scope["client"] = forwarded
                    if state.access_log:  # the only reader of the text
                        response.client = peer_text(*forwarded) if forwarded else "-"
            self.cycle = cycle
            if (
                screening
                and (probe is not None or (limit is not None and state.in_flight >= limit))
            ) or method == b"CONNECT":
                await self._answer(cycle, probe)
            else:
                if counting:
                    state.in_flight += 1
                try:
                    await app(scope, cycle.receive, cycle.send)
                except Exception as exc:
                    self._app_failed(cycle, exc)
                finally:
                    if counting:
                        state.in_flight -= 1
                if response.phase is not _COMPLETE:
                    await self._unfinished(cycle)
                    if cell is not None:
                        cell.request(method, response.status, started, conn.request_count > 1)
                    return
            if cell is not None:  # --metrics-port: the request, its status and duration
                cell.request(method, response.status, started, conn.request_count > 1)
            self.cycle = None
            if self.closed:
                return
            if not cycle.body_done and driver.next_event(state.clock) is _CLOSE:
                # Taking a bodiless request's end (the app did not ask for it) lets the next
                # cycle start clean; an unread body is the core's to drain or refuse.
                return
            # Handing over, a response begun before the shutdown (without "Connection: close")
            # leaves the connection open: the client may be sending its next request already.
            drain = state.drain
            step = driver.finish(state.clock, closing=drain is not None and drain.closing)
            if step is _CLOSE:
                return
        if driver.output:
            await self.close_with_output()

    async def close_with_output(self) -> None:
        """Send the driver's answer (an error response, a 408); the connection then closes."""
        driver = self.driver
        out, driver.output = driver.output, b""
        error_log.debug("connection %d: %s; closing", self.id, driver.reason)
        if self.state.metrics is not None:
            self.state.metrics.driver_closed(driver.reason, out)
        if out and not self.closed:
            with anyio.move_on_after(1), contextlib.suppress(ClientDisconnected):
                await self.write(out)
            self.linger = True
        self.closed = True

    async def write(self, data: bytes) -> None:
        """Send bytes, waiting while the peer is slow; a client that takes nothing for
        ``--timeout-write`` seconds, or reads slower than ``--min-write-rate`` (the stream's
        :class:`~tether_asyncio._stream.WriteTimeout`), is disconnected
        (:class:`ClientDisconnected`)."""
        if self.closed:
            raise ClientDisconnected("the client has disconnected")
        try:
            fast = self.fast
            if fast is not None:
                if fast.write(data):
                    await fast.flush()
            else:
                await self.stream.send(data)
        except STREAM_GONE as exc:
            raise self.lost(exc) from None

    def lost(self, exc: BaseException) -> ClientDisconnected:
        """The stream failed with ``exc``: the connection is closed, and the error to raise
        (the client being too slow is logged, at debug level)."""
        self.closed = True
        if isinstance(exc, WriteTimeout):
            error_log.debug("connection %d: %s; closing", self.id, exc)
        return ClientDisconnected("the client has disconnected")

    # -- one request (the common path is inline in _serve) -------------------------------------

    async def _answer(self, cycle: RequestCycle, probe: Probe | None) -> None:
        """Answer in the app's place: a health probe, CONNECT, or past --limit-concurrency."""
        state = self.state
        answer = state.screen.answer(cycle.response.request.method, probe, state.status)
        if answer is not None:
            await cycle.send_canned(*answer)
        else:
            await cycle.send_canned(*state.config.retry_after.response())
            if state.metrics is not None:
                state.metrics.shed("concurrency")

    async def _unfinished(self, cycle: RequestCycle) -> None:
        """The app returned (or raised) without completing its response: a 500 while the head
        is not committed, else cut the connection; log what the client got."""
        response = cycle.response
        gone = self.closed or cycle.disconnected
        if not cycle.failed and not gone:
            ended = "before completing its" if response.committed else "without starting a"
            error_log.error("connection %d: ASGI application returned %s response", self.id, ended)
        out = None if self.closed else response.fail()
        if out:
            cycle._finished()
            with anyio.move_on_after(1), contextlib.suppress(ClientDisconnected):
                await self.write(out)
        else:
            self.closed = True
            if self.state.access_log:
                log_access(access_log, response)

    def _app_failed(self, cycle: RequestCycle, exc: Exception) -> None:
        cycle.failed = True
        if self.closed and _caused_by_disconnect(exc):
            # Frameworks re-raise our ClientDisconnected as their own (Starlette's
            # ClientDisconnect): the client leaving is not an application error.
            error_log.debug("connection %d: client disconnected during the response", self.id)
            return
        response = cycle.response
        suffix, extra = tagged(response)
        short = cut_short(exc)
        if short is not None:
            # A file that shrank under a download: the response is cut (the connection closes),
            # an operational event that a traceback would only bury.
            request = response.request
            error_log.warning(
                "connection %d: response cut short (%s %s): %s; closing%s",
                self.id,
                request.method.decode("latin-1"),
                request.target.decode("latin-1"),
                short,
                suffix,
                extra=extra,
            )
            return
        # What the client gets, by what has left: a start() whose head is still held (a body
        # longer than its Content-Length, a bad pathsend) can still become a clean 500.
        if response.complete:
            outcome = " after completing its response"
        elif response.committed:
            outcome = " after the response started; closing"
        elif self.closed:
            outcome = ""  # the client has gone: nobody to answer
        else:
            outcome = "; answering 500"  # _unfinished sends it next
        error_log.error(
            "connection %d: exception in ASGI application%s%s",
            self.id,
            outcome,
            suffix,
            exc_info=exc,
            extra=extra,
        )


def _caused_by_disconnect(exc: BaseException | None) -> bool:
    """Whether ``exc`` is, or was raised while handling, :class:`ClientDisconnected`."""
    for _ in range(4):  # a short chain: a framework's wrapper, perhaps a second one
        if exc is None:
            return False
        if isinstance(exc, ClientDisconnected):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
