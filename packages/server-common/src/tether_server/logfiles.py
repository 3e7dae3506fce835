"""SIGUSR1 reopens log files, as gunicorn and nginx do, so that logrotate can move them away.

A ``--log-config`` may send logs to files (``logging.FileHandler`` and its subclasses). After
logrotate renames such a file, the process would go on writing into the renamed one; SIGUSR1
makes every file handler close its stream, and the next record opens the file at its path
again (``FileHandler.emit`` opens a handler's file when it has no stream), so it lands in a new
file there. Under ``--workers`` the supervisor reopens its own and passes the signal on to
every worker (:mod:`tether_server.supervisor`).

The reopening runs on a thread of its own, never inside the signal handler: the interrupted
code may be half-way through writing to one of those very files, holding its lock.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

#: The signal that reopens log files.
REOPEN_SIGNAL = signal.SIGUSR1

_log = logging.getLogger("tether.error")


def _file_handlers() -> list[logging.FileHandler]:
    loggers: list[Any] = [logging.getLogger()]
    loggers += [
        logger
        for logger in list(logging.Logger.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]
    found: dict[int, logging.FileHandler] = {}
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.FileHandler):
                found[id(handler)] = handler
    return list(found.values())


def reopen_log_files() -> int:
    """Close every file handler's stream, so that its next record opens the file at its path
    again; returns how many handlers there were."""
    handlers = _file_handlers()
    for handler in handlers:
        handler.acquire()
        try:
            stream = handler.stream
            if stream is not None:
                handler.stream = None
                try:
                    stream.flush()
                finally:
                    stream.close()
        except OSError as exc:
            _log.warning("could not close log file %s: %s", handler.baseFilename, exc)
        finally:
            handler.release()
    return len(handlers)


def _reopen_and_say() -> None:
    count = reopen_log_files()
    _log.info("%s received: %d log file(s) reopened", REOPEN_SIGNAL.name, count)


def on_reopen_signal(signum: int = REOPEN_SIGNAL, frame: FrameType | None = None) -> None:
    """A handler for :data:`REOPEN_SIGNAL` (``signal.signal``): reopen on a thread."""
    threading.Thread(target=_reopen_and_say, name="tether-reopen-logs", daemon=True).start()


def install_reopen_handler() -> Any:
    """Make :data:`REOPEN_SIGNAL` reopen log files (main thread only); returns the previous
    handler, for ``signal.signal`` to restore."""
    return signal.signal(REOPEN_SIGNAL, on_reopen_signal)


__all__ = ["REOPEN_SIGNAL", "install_reopen_handler", "on_reopen_signal", "reopen_log_files"]
