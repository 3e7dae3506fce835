"""State shared by every connection of one server run."""

from __future__ import annotations

import itertools
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from tether.http1 import ServerConnection, date_header
from tether.serving_drain import Drain
from tether.serving_driver import ConnectionDriver
from tether.serving_screen import Screen
from tether_asyncio._config import Config

if TYPE_CHECKING:
    from tether_asyncio._stream import FastStream
    from tether_asyncio._types import ASGIApp, ClientDisconnected, Stream

error_log = logging.getLogger("tether.error")
access_log = logging.getLogger("tether.access")


class ServerState:
    """What connections read from the server: options, the clock, counters, the shutdown flag.
    ``clock`` and ``response_date`` are the ticker's: the per-request path reads no clock."""

    def __init__(self, config: Config, app: ASGIApp) -> None:
        self.config = config
        self.app = app
        self.limits = config.limits()
        self.root_path = config.root_path
        #: The ASGI scope extensions of plain connections (one dict, shared).
        self.extensions: dict[str, Any] = {
            "http.response.trailers": {},
            "http.response.pathsend": {},
            "http.response.early_hint": {},
        }
        #: Lifespan ``state``: shallow-copied into each request scope.
        self.app_state: dict[str, Any] = {}
        self.clock = 0.0
        self.server_header = config.server_header_pair()
        #: The ``Date`` pair for responses (None with ``--no-date-header``).
        self.response_date = date_header(time.time()) if config.date_header else None
        self.limit_concurrency = config.limit_concurrency
        #: Health probes and CONNECT, answered before the app (and before --limit-concurrency).
        self.screen = Screen(
            config.health_path_prefix, self.limit_concurrency, config.limit_connections
        )
        #: ``--timeout-write`` (None: 0, no limit).
        self.write_timeout = config.timeout_write or None
        #: ``--min-write-rate``: bytes a second a client must take while waited on (0: none).
        self.min_write_rate = float(config.min_write_rate)
        self.websockets = config.ws != "none"
        #: Requests inside the app, counted only when something reads the count.
        self.in_flight = 0
        self.count_in_flight = bool(
            self.limit_concurrency is not None or self.screen.prefix or config.metrics is not None
        )
        #: Open connection handlers (HTTP and WebSocket), for timeouts and shutdown.
        self.connections: set[Any] = set()
        self.shutting_down = False
        #: The graceful shutdown's rules for each connection, once it has begun.
        self.drain: Drain | None = None
        #: A SIGHUP shutdown: idle keep-alive connections stay open until their next request
        #: (answered with ``Connection: close``) or timeout, so no request in flight is lost.
        self.handover = False
        self.access_log = config.access_log and access_log.isEnabledFor(logging.INFO)
        #: Request ids, trace ids, added response fields (None: all off).
        self.tagger = config.tagger()
        #: Whose X-Forwarded-For/-Proto to believe (None: --no-proxy-headers).
        self.proxies = config.trusted_proxies()
        #: --metrics-port (None: off; each hook tests it).
        self.metrics = config.metrics
        #: --limit-max-requests: count one request (None without a limit: no call at all).
        budget = config.request_budget
        self.spend_request = budget.spend if budget.limit is not None else None
        #: A new connection id for log lines.
        self.connection_id = itertools.count(1).__next__

    def status(self) -> tuple[bool, int, int]:
        """What a health probe reports: draining, requests in flight, open connections."""
        return self.shutting_down, self.in_flight, len(self.connections)

    def refresh(self, clock: float) -> None:
        """Advance the shared clock and the cached ``Date`` header."""
        self.clock = clock
        if self.response_date is not None:
            self.response_date = date_header(time.time())


class Owner(Protocol):
    """What :mod:`._exchange` and :mod:`._websocket` need of their HTTP connection: the
    boundary that keeps the connection loop (:mod:`._http`) above them, never imported back."""

    state: ServerState
    conn: ServerConnection
    driver: ConnectionDriver
    stream: Stream
    #: The stream when it is a FastStream (written without a coroutine per write), else None.
    fast: FastStream | None
    id: int
    closed: bool
    client: tuple[str, int] | None
    client_text: str
    server: tuple[str, int | None] | None
    scheme: str
    tls: dict[str, Any] | None
    websocket: Any

    async def write(self, data: bytes) -> None:
        """Send bytes; raises ``ClientDisconnected`` when the client is gone."""

    def lost(self, exc: BaseException) -> ClientDisconnected:
        """The stream failed with ``exc``: mark the connection closed; the error to raise."""
        ...

    async def close_with_output(self) -> None:
        """Send what the driver answers (an error response, a 408), then close."""
