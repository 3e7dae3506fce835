"""Health probes a server answers itself, before the application: liveness, readiness and
start-up, as Kubernetes and load balancers ask for them.

With ``--health-path-prefix /_tether`` a server answers ``GET /_tether/live``,
``/_tether/ready`` and ``/_tether/startup`` without calling the application and without
counting them against ``--limit-concurrency`` (a probe must get through when the server sheds
load, or an orchestrator restarts a server that is merely busy). What each answers:

- ``live``: 200 whenever the process can answer at all (its event loop or selector loop runs).
- ``startup``: 200 once lifespan start-up finished, else 503.
- ``ready``: 200 when started, not draining (a graceful stop or a reload hands over), and below
  the concurrency and connection limits; else 503 with the reason.

The body is a small JSON object (``{"status": "ok"}`` or ``{"status": "unavailable", "reason":
...}``); ``HEAD`` gets the same head. Pure: the server passes its state in.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from tether.http1 import Response


class Probe(enum.Enum):
    """Which probe a path asks for."""

    LIVE = "live"
    READY = "ready"
    STARTUP = "startup"


@dataclass(frozen=True, slots=True)
class HealthState:
    """What a server knows about itself when a probe arrives."""

    #: Lifespan start-up has finished (or the app does not use lifespan).
    started: bool
    #: A graceful stop or a reload is under way.
    draining: bool = False
    #: Requests being answered now, and ``--limit-concurrency`` (None: no limit).
    in_flight: int = 0
    limit_concurrency: int | None = None
    #: Open connections now, and ``--limit-connections`` (None: no limit).
    connections: int = 0
    limit_connections: int | None = None


def probe_for(path: bytes, prefix: bytes) -> Probe | None:
    """The probe ``path`` asks for under ``prefix`` (e.g. ``b"/_tether"``), or None."""
    if not prefix or not path.startswith(prefix) or path[len(prefix) : len(prefix) + 1] != b"/":
        return None
    try:
        return Probe(path[len(prefix) + 1 :].decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None


def _unready(state: HealthState) -> str | None:
    if not state.started:
        return "starting"
    if state.draining:
        return "draining"
    if state.limit_concurrency is not None and state.in_flight >= state.limit_concurrency:
        return "at --limit-concurrency"
    if state.limit_connections is not None and state.connections >= state.limit_connections:
        return "at --limit-connections"
    return None


def health_response(probe: Probe, state: HealthState) -> tuple[Response, bytes]:
    """The response (head and body) for ``probe`` in ``state``."""
    if probe is Probe.LIVE:
        reason = None
    elif probe is Probe.STARTUP:
        reason = None if state.started else "starting"
    else:
        reason = _unready(state)
    document = {"status": "ok"} if reason is None else {"status": "unavailable", "reason": reason}
    body = json.dumps(document).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
        (b"cache-control", b"no-store"),
    ]
    return Response(200 if reason is None else 503, headers), body


__all__ = ["HealthState", "Probe", "health_response", "probe_for"]
