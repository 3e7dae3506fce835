"""The narrow interfaces between the server's layers, so that no module imports back up.

The layers, bottom up: a :class:`~tether_threaded._connection.Connection` moves bytes for one
socket; the WebSocket session (:mod:`._websocket`) and the WSGI exchange (:mod:`._wsgi`) sit
on a connection; the loop (:mod:`._loop`) owns them all. What a lower layer needs of a higher
one is spelled here as a protocol (a :class:`Host` for the loop, a :class:`Job` for one
request, a :class:`Handler` for a WebSocket session) instead of an import of the class.
"""

from __future__ import annotations

import selectors
from collections.abc import Callable
from typing import IO, Any, Protocol

from tether.http1 import Request, Response
from tether.limits import Limits
from tether_threaded._config import Config
from tether_threaded._types import Environ, WSGIApp

Headers = list[tuple[bytes, bytes]]


class Job(Protocol):
    """One request as its connection sees it, from its head until a worker runs it."""

    environ: Environ
    input: IO[bytes] | None

    @property
    def has_body(self) -> bool:
        """Whether the request has a body to gather before the application runs."""

    @property
    def upgrade(self) -> object | None:
        """The WebSocket upgrade offered to the application, if the request asks for one."""

    def close_input(self) -> None:
        """Free the gathered body."""

    @property
    def request(self) -> Request:
        """The request's head."""

    def canned(self, response: Response, body: bytes) -> bytes | None:
        """The bytes of a complete server-made response (None once the head was committed)."""

    def overloaded(self) -> bytes:
        """The bytes of the canned 503 (the server is at its limit), with a close."""

    def run(self) -> None:
        """Run the application and send its response (worker thread)."""


class Handler(Protocol):
    """A WebSocket session as its connection (and the loop) sees it."""

    @property
    def out_paused(self) -> bool:
        """Reading stopped because output to the client is backed up."""

    def on_readable(self, now: float) -> None:
        """The socket is readable (loop thread)."""

    def on_timer(self, now: float) -> None:
        """A deadline may have passed (loop thread)."""

    def next_deadline(self) -> float | None:
        """The session's next deadline."""

    def resume_reading(self) -> None:
        """Output drained below its low mark: read frames again."""

    def connection_closed(self) -> None:
        """TCP closed: wake a receiving application."""

    def going_away(self, now: float) -> None:
        """Server shutdown: start the closing handshake."""


class Host(Protocol):
    """The loop as connections, exchanges and sessions see it."""

    @property
    def config(self) -> Config: ...

    @property
    def limits(self) -> Limits: ...

    @property
    def selector(self) -> selectors.BaseSelector: ...

    @property
    def app(self) -> WSGIApp: ...

    @property
    def body_cap(self) -> int: ...

    @property
    def draining(self) -> bool: ...

    @property
    def handover(self) -> bool: ...

    @property
    def access_log(self) -> bool: ...

    def in_loop(self) -> bool:
        """Whether the caller runs on the loop thread."""

    def call_soon(self, conn: Any, wake: bool) -> None:
        """Ask the loop to service ``conn`` on its next pass."""

    def push_timer(self, at: float, conn: Any) -> None:
        """Look at ``conn`` at time ``at`` (loop thread)."""

    def server_fields(self) -> tuple[tuple[bytes, bytes] | None, tuple[bytes, bytes] | None]:
        """The ``Date`` and ``Server`` fields to add to responses (None: leave out)."""

    def admit(self) -> bool:
        """Count a request in, unless the server is at its limit."""

    def release(self) -> None:
        """Count a finished request out."""

    def admit_websocket(self) -> bool:
        """Count a WebSocket session in, unless at its limit."""

    def release_websocket(self) -> None:
        """Count a finished WebSocket session out."""

    def make_exchange(self, conn: Any, request: Request) -> Job:
        """The environ and the runner of ``request``."""

    @property
    def health_prefix(self) -> bytes: ...

    def health(self, request: Request) -> tuple[Response, bytes] | None:
        """The answer to a health probe (``--health-path-prefix``), or None for other paths."""

    def submit(self, exchange: Any) -> None:
        """Queue a request for the workers."""

    def resume(self, job: Callable[[], None]) -> None:
        """Queue the rest of a parked response for the workers."""

    def forget(self, conn: Any) -> None:
        """A connection closed (loop thread)."""


__all__ = ["Handler", "Headers", "Host", "Job"]
