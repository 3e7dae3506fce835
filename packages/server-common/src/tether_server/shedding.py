"""When a shed client should come back: the ``Retry-After`` of both servers' 503s.

A server at ``--limit-concurrency`` (or the threaded server's ``--limit-websockets``) answers
503 without calling the application (:func:`tether.serving.overload_response`). Its
``Retry-After`` (RFC 9110 section 10.2.3, whole seconds) comes from ``--retry-after-window W``,
the seconds within which the operator wants shed clients back:

    Retry-After = a whole number drawn uniformly from ceil(W / 2) .. W

Half the window is a floor, the other half is spread at random ("equal jitter", as in the AWS
Architecture Blog's *Exponential Backoff and Jitter*): clients shed in the same burst are
told different delays, so well-behaved ones do not all return in the same second and find
the server full again. ``W = 1`` always gives 1, the old constant.
"""

from __future__ import annotations

import random

from tether.http1 import Response
from tether.serving import overload_response

#: ``--retry-after-window``'s default: shed clients come back after 1 or 2 seconds.
DEFAULT_WINDOW = 2


class RetryAfter:
    """The delays a server tells the clients it sheds, drawn from its configured window."""

    __slots__ = ("_floor", "_random", "window")

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        """Draw from ``ceil(window / 2)`` to ``window`` seconds (``window`` >= 1)."""
        if window < 1:
            raise ValueError(f"the Retry-After window must be at least 1 second, got {window}")
        self.window = window
        self._floor = (window + 1) // 2
        # Its own generator: nothing else in the process draws from or reseeds this one.
        self._random = random.Random()

    def __call__(self) -> int:
        """The next shed client's delay, in whole seconds."""
        return self._random.randint(self._floor, self.window)

    def response(self) -> tuple[Response, bytes]:
        """The canned 503 with the next delay."""
        return overload_response(self())


__all__ = ["DEFAULT_WINDOW", "RetryAfter"]
