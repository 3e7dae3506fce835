"""How a server stops: on which signals, what it says, and what ends a stop in time when the
server's own loop cannot (an app that blocks it).

Both servers stop on :data:`STOP_SIGNALS` (gracefully; a second one, or SIGQUIT at once,
forces the stop) and say so through :func:`on_stop_signal`. They act on it in their loop. An
application that blocks the loop (a synchronous call in an async app, a busy loop, a log
handler stuck on its sink) leaves it deaf, and the stop never ends. Each kind of process has a
bound, ``--timeout-graceful-shutdown`` + :data:`STOP_SLACK` seconds after it was told to stop:

- a ``--workers`` worker is killed by its supervisor (:mod:`tether_server.supervisor`);
- a worker whose supervisor died ends itself (:func:`watch_supervisor`);
- a lone server ends itself (:class:`StopWatchdog`), with status 1 and one error line.

Server-side I/O, not part of the protocol core; nothing here is started before a server asks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import threading
import time
from collections.abc import Iterable
from types import FrameType

_log = logging.getLogger("tether.error")

#: Seconds a stopping process gets past --timeout-graceful-shutdown before it is ended: its own
#: drain ends at the grace, then its lifespan shutdown runs and it exits.
STOP_SLACK = 3.0
#: The byte :meth:`StopWatchdog.disarm` writes (a signal's is its number, never 0).
_DISARM = b"\0"


# -- which signals stop a server, and what it says -----------------------------------------

#: The signal both servers stop on quickly (gunicorn's SIGQUIT): a first stop signal and the
#: second that forces it at once, so open connections are closed without waiting for
#: ``--timeout-graceful-shutdown``. Its default action would kill the process with a core dump.
QUICK_STOP_SIGNAL = signal.SIGQUIT

#: The signals both servers stop on: gracefully, a second one forcing the exit; quickly at
#: once for :data:`QUICK_STOP_SIGNAL`.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, QUICK_STOP_SIGNAL)

# Whether this process is a worker of a --workers supervisor (see mark_supervised).
_supervised = False


def mark_supervised() -> None:
    """This process is a ``--workers`` or ``--reload`` worker (set at start-up)."""
    global _supervised
    _supervised = True


def supervised() -> bool:
    """Whether this process is a worker of a supervisor."""
    return _supervised


def stop_message(signum: int) -> str:
    """The line a server logs when a stop signal (:data:`STOP_SIGNALS`) arrives.

    SIGHUP stops a server gracefully, handing over: requests in flight are answered and idle
    keep-alive connections are kept until the client's next request or their keep-alive
    timeout (see :mod:`tether_server.supervisor`), so a server that takes over the socket loses
    nothing. A worker gets it from its supervisor during a reload; a server on its own cannot
    re-import its app in place (modules already imported, and the app's state, would stay), so
    it says that reloading needs ``--workers``.
    """
    name = signal.Signals(signum).name
    if signum == QUICK_STOP_SIGNAL:
        return f"{name} received: shutting down quickly, closing open connections now"
    if signum != signal.SIGHUP:
        return f"{name} received: shutting down"
    if _supervised:
        return f"{name} received: shutting down gracefully, handing over to the other workers"
    return (
        f"{name} received: shutting down gracefully (to reload without stopping, run with "
        "--workers: its supervisor reloads on SIGHUP)"
    )


#: Logged after :func:`stop_message`: how to cut a graceful shutdown short.
FORCE_HINT = "a second signal forces the exit"

#: Logged (a warning) when that second signal arrives.
FORCED_EXIT = "second signal: forcing exit"


def on_stop_signal(signum: int, *, first: bool) -> bool:
    """What a stop signal (:data:`STOP_SIGNALS`) means, logged the same on both servers.

    The ``first`` begins a graceful stop (:func:`stop_message`, then :data:`FORCE_HINT`);
    a later one forces the exit (:data:`FORCED_EXIT`), which the server does. A first
    :data:`QUICK_STOP_SIGNAL` is both at once, said in one line; the server begins its stop
    and forces it (:func:`forces_stop`). Returns whether the stop hands over: a first SIGHUP
    keeps idle keep-alive connections until their next request
    (:class:`tether.serving_drain.Drain`).
    """
    log = logging.getLogger("tether.error")
    if not first:
        log.warning("%s", FORCED_EXIT)
        return False
    log.info("%s", stop_message(signum))
    if signum != QUICK_STOP_SIGNAL:
        log.info("%s", FORCE_HINT)
    return signum == signal.SIGHUP


def forces_stop(signum: int, *, first: bool) -> bool:
    """Whether a stop signal cuts the graceful shutdown short: a second one, or SIGQUIT."""
    return not first or signum == QUICK_STOP_SIGNAL


# -- what bounds a stop in time -------------------------------------------------------------


class StopWatchdog:
    """Ends this process if a stop signal's stop has not ended ``grace`` + STOP_SLACK seconds
    after it arrived (``grace`` None: no bound, as the supervisor has none then).

    It is armed from a Python-level signal handler (:meth:`arm`, or :meth:`chain` in front of
    an event loop's): CPython runs those in the main thread between bytecodes, also while an
    app blocks the event loop there (``time.sleep`` returns to Python for the handler, then
    sleeps on), whereas asyncio's ``add_signal_handler`` callbacks run only when the loop does.
    The handler only writes a byte to a pipe (no lock a blocked main thread may hold); a daemon
    thread, started with the watchdog, waits on the pipe and keeps the time.
    """

    def __init__(self, grace: float | None) -> None:
        self._grace = grace
        self._armed = False
        self._done = grace is None
        if grace is None:
            return
        self._read, self._write = os.pipe()
        threading.Thread(target=self._watch, name="tether-stop-watchdog", daemon=True).start()

    def arm(self, signum: int) -> None:
        """A stop signal arrived: the countdown starts (at the first). Call it first thing in
        the handler, before anything that may block (logging)."""
        if self._armed or self._done:
            return
        self._armed = True
        with contextlib.suppress(OSError):
            os.write(self._write, bytes((signum,)))

    def disarm(self) -> None:
        """The server has stopped (or is not stopping): the watchdog ends without acting."""
        if self._done:
            return
        self._done = True  # before the write: a handler that runs now no longer writes
        with contextlib.suppress(OSError):
            os.write(self._write, _DISARM)

    def chain(self, signals: Iterable[int]) -> None:
        """Arm on each of ``signals`` in front of the Python-level handler in place, once an
        event loop has installed its own: asyncio's and uvloop's do nothing (they learn of the
        signal through their wakeup fd, so a blocked loop never does), trio's queues the
        signal for its loop. The loop restores its own handlers' predecessors when it stops."""
        for signum in signals:
            previous = signal.getsignal(signum)

            def handler(signum: int, frame: FrameType | None, previous: object = previous) -> None:
                self.arm(signum)
                if callable(previous):
                    previous(signum, frame)

            signal.signal(signum, handler)

    def _watch(self) -> None:
        assert self._grace is not None
        limit = self._grace + STOP_SLACK
        try:
            first = os.read(self._read, 1)
            if first in (b"", _DISARM):
                return
            if select.select([self._read], [], [], limit)[0]:
                return  # disarmed: the stop ended in time
            _report(
                "still running %g s after %s (--timeout-graceful-shutdown %g + %g s): its event "
                "loop is blocked (an application call that does not return?); exiting with "
                "status 1",
                limit,
                signal_name(first[0]),
                self._grace,
                STOP_SLACK,
            )
            os._exit(1)
        finally:
            os.close(self._read)
            os.close(self._write)


def _report(message: str, *args: object) -> None:
    """Log an error line, waiting for it at most a second: the log's own handlers may be
    what blocks the loop. Past that, the line goes straight to stderr's descriptor."""
    thread = threading.Thread(target=_log.error, args=(message, *args), daemon=True)
    thread.start()
    thread.join(1.0)
    if thread.is_alive():
        with contextlib.suppress(OSError):
            os.write(2, f"ERROR: {message % args}\n".encode(errors="replace"))


def signal_name(signum: int) -> str:
    """A signal's name (SIGTERM), or its number for one Python does not name."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def watch_supervisor(fd: int, grace: float | None = None) -> None:
    """In a worker: stop gracefully once the supervisor is gone (see
    :mod:`tether_server.supervisor`).

    ``fd`` is the inherited read end of the supervisor's pipe; a daemon thread waits for its
    EOF, then sends this process SIGTERM, which the server handles as any stop request. If the
    process is still running ``grace`` (--timeout-graceful-shutdown) plus STOP_SLACK seconds
    later, its loop is blocked (an app that never yields cannot let it act on the signal) and
    the thread ends the process: no supervisor is left to kill it, and an orphan would hold
    the port and its memory until the app returned.
    """
    parent = os.getppid()

    def wait() -> None:
        with contextlib.suppress(OSError):
            while os.read(fd, 512):
                pass  # nothing is written to it; EOF is the news
        _log.warning("the supervisor (pid %d) is gone: stopping this worker", parent)
        os.kill(os.getpid(), signal.SIGTERM)
        if grace is None:
            return
        time.sleep(grace + STOP_SLACK)  # a daemon thread: a process that exits ends it
        _log.error(
            "this worker is still running %g s after its supervisor went "
            "(--timeout-graceful-shutdown %g); exiting",
            grace + STOP_SLACK,
            grace,
        )
        os._exit(1)

    threading.Thread(target=wait, name="tether-supervisor-watch", daemon=True).start()


__all__ = [
    "FORCED_EXIT",
    "FORCE_HINT",
    "QUICK_STOP_SIGNAL",
    "STOP_SIGNALS",
    "STOP_SLACK",
    "StopWatchdog",
    "forces_stop",
    "mark_supervised",
    "on_stop_signal",
    "signal_name",
    "stop_message",
    "supervised",
    "watch_supervisor",
]
