"""``--limit-max-requests``: a server process is replaced after serving so many requests.

Long-running processes of some applications grow (leaks, caches, fragmentation); replacing
them now and then bounds that, as gunicorn's ``--max-requests`` and uvicorn's
``--limit-max-requests`` do. Under ``--workers`` the worker asks its supervisor for a
replacement (the ``r`` word of :class:`~tether_server.startup.WorkerLink`): the supervisor starts
the new worker first and tells the old one to drain once the new one serves, so no request is
lost. A server on its own has nobody to take over: it shuts down gracefully, as uvicorn does,
and whatever runs it (systemd, Kubernetes) starts it again.

A jitter (``--limit-max-requests-jitter``, gunicorn's ``--max-requests-jitter``) adds a random
0..J to each process's limit, so workers started together do not all recycle together.
"""

from __future__ import annotations

import logging
import random
import signal
from collections.abc import Callable

from tether_server.startup import WorkerLink

_log = logging.getLogger("tether.error")


class RequestBudget:
    """Counts a process's requests; when ``limit`` (plus jitter) is reached, asks once to be
    replaced. Call :meth:`spend` from one thread (the server's loop)."""

    __slots__ = ("_left", "limit", "notify_fd", "stop")

    def __init__(
        self,
        limit: int | None,
        jitter: int = 0,
        *,
        notify_fd: int | None = None,
        stop: Callable[[], None] | None = None,
    ) -> None:
        """``limit`` None: no limit. ``notify_fd``: the ``--workers`` supervisor's pipe.
        ``stop``: how a lone server begins its graceful shutdown (default: SIGTERM to itself,
        which the command lines handle gracefully)."""
        #: The limit of this process, jitter included (None: none).
        self.limit = limit
        if limit is not None and jitter:
            self.limit = limit + random.randint(0, jitter)
        # Without a limit the count starts below zero and never reaches it: one subtraction
        # and one comparison per request either way.
        self._left = -1 if self.limit is None else self.limit
        self.notify_fd = notify_fd
        self.stop = stop

    def spend(self) -> None:
        """Count one request; the one that reaches the limit triggers the replacement."""
        self._left -= 1
        if self._left == 0:
            self._spent()

    def _spent(self) -> None:
        if self.notify_fd is not None:
            _log.info(
                "served %d requests (--limit-max-requests): asking for a replacement", self.limit
            )
            WorkerLink(self.notify_fd).recycle()
            return
        _log.warning(
            "served %d requests (--limit-max-requests): shutting down gracefully", self.limit
        )
        if self.stop is not None:
            self.stop()
        else:
            signal.raise_signal(signal.SIGTERM)


__all__ = ["RequestBudget"]
