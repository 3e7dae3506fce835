"""When a server gives up on a client that takes its output too slowly, written once for every
server.

A client that stops reading is caught by a no-progress timeout: a write that waits longer than
``timeout`` seconds without the client taking a byte ends the connection. A client that reads a
little now and then is not: taking a few hundred bytes a minute, it holds its connection (and
what the server keeps for the response) for as long as the response lasts, and a few thousand
such clients hold every descriptor the server has. So the time spent waiting on a client is
also weighed against what it took, as Kestrel's ``MinResponseDataRate`` does (and, for request
bodies, Apache's ``mod_reqtimeout``, ``--min-body-rate`` here): over the whole connection, the
seconds spent waiting may not pass ``timeout`` plus one second per ``min_rate`` bytes the
client took since the first wait.

Only waiting counts. Time the application spends producing the next piece (an event stream
idle for an hour) is not waiting, and a client that keeps up is never waited on at all.
:class:`WritePace` keeps the account; the server passes ``now`` and a count of the bytes the
client has taken (TCP's acknowledged bytes, where the kernel tells them), and sleeps until the
deadline it hands back.
"""

from __future__ import annotations

import math

__all__ = ["WritePace"]


class WritePace:
    """The account of one connection's waits on its client (see the module's rules).

    ``taken`` is any count of the bytes the client has taken that only grows (its origin does
    not matter). A server calls :meth:`wait` when a write would block, :meth:`progress` when
    it looks again during the wait, and :meth:`done` when the wait is over; the first two
    return the wait's deadline. Past it the connection is closed: :meth:`reason` says why.
    """

    __slots__ = ("_base", "_last", "_since", "_taken", "_waited", "min_rate", "timeout")

    def __init__(self, timeout: float, min_rate: float = 0.0) -> None:
        #: Seconds a wait may go without the client taking anything.
        self.timeout = timeout
        #: Bytes per second the client must average while waited on (0: no minimum).
        self.min_rate = min_rate
        #: Seconds spent in earlier waits; ``taken`` at the first wait and at the last look.
        self._waited = 0.0
        self._base: int | None = None
        self._taken = 0
        #: When the current wait began, and when the client last took something in it.
        self._since: float | None = None
        self._last = 0.0

    @property
    def waiting(self) -> bool:
        """Whether a wait is in progress."""
        return self._since is not None

    def wait(self, now: float, taken: int) -> float:
        """A write would block from ``now``: the deadline of this wait."""
        if self._base is None:
            self._base = taken
        if self._since is None:
            self._since = self._last = now
            self._taken = taken
        return self.progress(now, taken)

    def progress(self, now: float, taken: int) -> float:
        """A look during the wait, the client having taken ``taken`` bytes in all: the
        deadline from here (infinity when no wait is in progress)."""
        if taken > self._taken:
            self._taken = taken
            self._last = now
        return math.inf if self._since is None else self.deadline()

    def done(self, now: float) -> None:
        """The wait is over (everything queued was taken)."""
        if self._since is not None:
            self._waited += now - self._since
            self._since = None

    def deadline(self) -> float:
        """When the current wait fails: ``timeout`` after the client last took anything, or
        earlier when it has taken too little for the time spent waiting on it."""
        since = self._since
        if since is None:
            raise RuntimeError("no wait in progress")
        stalled = self._last + self.timeout
        if not self.min_rate or self._base is None:
            return stalled
        slow = since - self._waited + self.timeout + (self._taken - self._base) / self.min_rate
        return min(stalled, slow)

    def reason(self, now: float) -> str:
        """Why the wait failed at ``now`` (its deadline passed), for the log."""
        if now >= self._last + self.timeout:
            return f"no write progress for {self.timeout:g} s"
        return f"the client reads slower than {self.min_rate:g} bytes/s"
