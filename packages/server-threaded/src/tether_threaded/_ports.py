"""What a connection and a request need of the loop (:class:`Host`) and of one request
(:class:`Job`), spelled as protocols so that no module imports back up to :mod:`._loop` or
:mod:`._wsgi`.
"""

from __future__ import annotations

import selectors
from collections.abc import Callable
from typing import Any, Protocol

from tether.http1 import Request
from tether.limits import Limits
from tether.serving import TrustedProxies
from tether.serving_wsgi import WSGIApp
from tether_server.recycling import RequestBudget
from tether_server.server_metrics import ServerMetrics
from tether_server.tagging import Tagger
from tether_threaded._config import Config
from tether_threaded._input import BodyBuffer, Source, StreamedBody


class Job(Protocol):
    """One request as its connection sees it, from its head until the loop dispatches it."""

    @property
    def has_body(self) -> bool:
        """Whether the request has a body to gather before the application runs."""

    def stream_body(self, source: Source) -> StreamedBody:
        """``--request-body stream``: the application's ``wsgi.input``, fed by the loop."""


class Host(Protocol):
    """The loop as connections, exchanges and sessions see it (:class:`~._loop.Loop`)."""

    config: Config
    limits: Limits
    selector: selectors.BaseSelector
    app: WSGIApp
    body_cap: int | None
    draining: bool
    handover: bool
    access_log: bool
    metrics: ServerMetrics | None
    tagger: Tagger | None
    proxies: TrustedProxies | None
    date_header: bool
    server_header: tuple[bytes, bytes] | None
    request_budget: RequestBudget | None

    @property
    def make_exchange(self) -> Callable[[Any, Request], Job]:
        """Builds the :class:`Job` of a request head on a connection."""

    def in_loop(self) -> bool: ...
    def call_soon(self, conn: Any, wake: bool) -> None: ...
    def push_timer(self, at: float, conn: Any) -> None: ...
    def release(self, upgrade: bool) -> None: ...
    def dispatch(self, conn: Any, exchange: Any, body: BodyBuffer | None, now: float) -> None: ...
    def resume(self, job: Callable[[], None]) -> None: ...
    def forget(self, conn: Any) -> None: ...


__all__ = ["Host", "Job"]
