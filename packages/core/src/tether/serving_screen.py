"""What a server answers in the application's place, and in which order (sans I/O, once).

Before a request reaches the application, a server may answer it itself. Both Tether servers
ask the same questions in the same order:

1. A health probe under ``--health-path-prefix`` (:mod:`tether.health`) is answered first,
   also past ``--limit-concurrency``: a busy server is not a dead one, and an orchestrator that
   sees its probes shed restarts it.
2. ``CONNECT`` gets 501 (:func:`tether.serving.no_tunnel_response`): neither ASGI nor WSGI can
   run a tunnel.
3. Only then does the server's admission decide; past its limit it sheds with 503
   (:class:`tether_server.shedding.RetryAfter`).

Answers 1 and 2 keep the connection open, like any complete response. :class:`Screen` holds
what the answers depend on (the probe prefix and the limits a probe reports against); the
server passes in what changes (whether it drains, its counts) only when a probe needs them.
"""

from __future__ import annotations

from collections.abc import Callable

from tether.health import HealthState, Probe, health_response, probe_for
from tether.http1 import Response
from tether.serving import no_tunnel_response

__all__ = ["Screen"]


class Screen:
    """One server's answers before admission: health probes, then ``CONNECT``."""

    __slots__ = ("active", "limit_concurrency", "limit_connections", "prefix")

    def __init__(
        self,
        health_path_prefix: str | None,
        limit_concurrency: int | None = None,
        limit_connections: int | None = None,
    ) -> None:
        """``health_path_prefix`` as the option gives it (``"/_tether/"``, None: no probes);
        the limits are those a readiness probe reports against (None: no limit)."""
        #: The probe prefix as bytes without its trailing ``/`` (empty: no probes).
        self.prefix = health_path_prefix.rstrip("/").encode() if health_path_prefix else b""
        self.limit_concurrency = limit_concurrency
        self.limit_connections = limit_connections
        #: Whether a request other than ``CONNECT`` can be answered before the application (a
        #: probe, a concurrency limit): without, a server may skip the screening per request.
        self.active = bool(self.prefix) or limit_concurrency is not None

    def probe(self, raw_path: bytes) -> Probe | None:
        """The probe the request path (still percent-encoded, without the query) asks for."""
        return probe_for(raw_path, self.prefix) if self.prefix else None

    def answer(
        self,
        method: bytes,
        probe: Probe | None,
        status: Callable[[], tuple[bool, int, int]],
    ) -> tuple[Response, bytes] | None:
        """The response (head and body) the server sends in the application's place, on a
        connection it keeps open; None: admission decides (the app, or a shed 503).

        ``status`` is called only for a probe and gives what the server knows of itself then:
        ``(draining, requests in flight, open connections)``.
        """
        if probe is not None:
            draining, in_flight, connections = status()
            state = HealthState(
                started=True,  # both servers accept connections only after start-up
                draining=draining,
                in_flight=in_flight,
                limit_concurrency=self.limit_concurrency,
                connections=connections,
                limit_connections=self.limit_connections,
            )
            return health_response(probe, state)
        if method == b"CONNECT":
            return no_tunnel_response()
        return None
