"""A graceful shutdown's rules for each open connection, written once for every server.

When a server stops gracefully it stops accepting, then decides for each connection it holds:

- a WebSocket session is closed with 1001 "going away" (:data:`~tether.serving_cycle.RULES`);
- a connection idle between requests is closed at once: nothing is lost, and a client retries
  a request that finds a reused connection closed;
- a connection that has sent nothing yet is left open for ``RULES.fresh_grace_seconds``: its
  first request may be on the way already (closing loses it, as clients retry only on reused
  connections), and after the grace it is closed like an idle one (one with part of a head
  keeps its head timeout);
- a request in progress is finished, and its response ends the connection
  (``Connection: close``).

A SIGHUP stop *hands over* to a new server: then idle keep-alive connections stay open until
their next request (answered with ``Connection: close``) or their timeout, so no request sent
meanwhile is lost, and there is no grace to end.

The whole drain is bounded by ``--timeout-graceful-shutdown``: past it the server closes what
is still open. :class:`Drain` keeps these rules and their deadlines; the server passes ``now``
and acts on the answers.
"""

from __future__ import annotations

import enum
import math

from tether.serving_cycle import RULES

__all__ = ["AtDrain", "Drain"]


class AtDrain(enum.Enum):
    """What a server does with one connection when a graceful shutdown begins."""

    #: A WebSocket session: close it with ``RULES.going_away_code``.
    GOING_AWAY = "going away"
    #: Idle between requests: close it now.
    CLOSE = "close"
    #: Anything else (a request in progress, a fresh connection in its grace, a TLS handshake,
    #: an idle one while handing over): leave it; a response it completes then ends it,
    #: unless the stop hands over (:attr:`Drain.closing`).
    FINISH = "finish"


class Drain:
    """One graceful shutdown: which connections close when."""

    __slots__ = ("deadline", "fresh_until", "handover")

    def __init__(self, now: float, *, handover: bool = False, grace: float | None = None) -> None:
        """Begin draining at ``now``; ``handover``: a SIGHUP stop (see the module docstring);
        ``grace``: ``--timeout-graceful-shutdown`` in seconds (None: no limit)."""
        self.handover = handover
        #: When the server stops waiting and closes the connections still open (inf: never).
        self.deadline = now + grace if grace is not None else math.inf
        #: When connections that have sent nothing are closed (None: not, or done already).
        self.fresh_until = None if handover else now + RULES.fresh_grace_seconds

    def at_start(self, *, websocket: bool, idle: bool, requests: int) -> AtDrain:
        """What to do now with a connection: a WebSocket session, or one ``idle`` (waiting for
        a request's first byte, nothing in the application) after ``requests`` requests."""
        if websocket:
            return AtDrain.GOING_AWAY
        if idle and self.closes_idle(requests):
            return AtDrain.CLOSE
        return AtDrain.FINISH

    def closes_idle(self, requests: int) -> bool:
        """Whether a connection idle after ``requests`` requests closes instead of waiting for
        another (also when it becomes idle during the drain)."""
        return requests > 0 and not self.handover

    @property
    def closing(self) -> bool:
        """Whether a response finished during the drain ends its connection."""
        return not self.handover

    def overdue(self, now: float) -> bool:
        """Whether ``--timeout-graceful-shutdown`` has run out at ``now``."""
        return now >= self.deadline

    def fresh_due(self, now: float) -> bool:
        """Whether the grace of connections that have sent nothing ends at ``now`` (True once):
        the server then closes those still idle with nothing received
        (:attr:`tether.http1.ServerConnection.fresh`)."""
        if self.fresh_until is None or now < self.fresh_until:
            return False
        self.fresh_until = None
        return True
