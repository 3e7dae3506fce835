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
from typing import Any, Protocol

from tether.http1 import Request
from tether.limits import Limits
from tether.serving import TrustedProxies
from tether.serving_websocket import Hold
from tether.serving_wsgi import WSGIApp
from tether_server.server_metrics import ServerMetrics
from tether_server.tagging import Tagger
from tether_threaded._config import Config
from tether_threaded._input import BodyBuffer


class Job(Protocol):
    """One request as its connection sees it, from its head until the loop dispatches it."""

    @property
    def has_body(self) -> bool:
        """Whether the request has a body to gather before the application runs."""


class Handler(Protocol):
    """A WebSocket session as its connection (and the loop) sees it."""

    @property
    def held(self) -> Hold | None:
        """Why reading is held back (None: it is not)."""

    def on_readable(self, now: float) -> None:
        """The socket is readable (loop thread)."""

    def on_timer(self, now: float) -> None:
        """A deadline may have passed (loop thread)."""

    def deadline(self) -> float | None:
        """The session's next deadline."""

    def resume_reading(self) -> None:
        """Output drained below its low mark: read frames again if reading was held back."""

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
    @property
    def metrics(self) -> ServerMetrics | None: ...

    @property
    def tagger(self) -> Tagger | None: ...

    @property
    def proxies(self) -> TrustedProxies | None: ...

    def in_loop(self) -> bool:
        """Whether the caller runs on the loop thread."""

    def call_soon(self, conn: Any, wake: bool) -> None:
        """Ask the loop to service ``conn`` on its next pass."""

    def push_timer(self, at: float, conn: Any) -> None:
        """Look at ``conn`` at time ``at`` (loop thread)."""

    def server_fields(self) -> tuple[tuple[bytes, bytes] | None, tuple[bytes, bytes] | None]:
        """The ``Date`` and ``Server`` fields to add to responses (None: leave out)."""

    def release(self) -> None:
        """Count a finished request out."""

    def release_websocket(self) -> None:
        """Count a finished WebSocket session out."""

    def make_exchange(self, conn: Any, request: Request) -> Job:
        """The environ and the runner of ``request``."""

    def dispatch(self, conn: Any, exchange: Any, body: BodyBuffer | None, now: float) -> None:
        """Answer a complete request, or hand it with its body to the application."""

    def resume(self, job: Callable[[], None]) -> None:
        """Queue the rest of a parked response for the workers."""

    def forget(self, conn: Any) -> None:
        """A connection closed (loop thread)."""


__all__ = ["Handler", "Host", "Job"]
