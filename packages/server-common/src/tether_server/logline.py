"""The access line's short way to stderr: the bytes the logging call writes, without its record.

An access line is one INFO record per request, and with the logging module a record costs about
53,000 machine instructions more than the line itself: the ``LogRecord`` (time, thread, process
and module names), the filter and handler calls, the formatter (``bench/asgi_instructions.py
--access-log`` counts a whole request). When the only thing an INFO line of a logger would
reach is the handler :func:`tether_server.startup.configure_logging` installed for text lines
(a :class:`LineHandler` with its own formatter, no filters anywhere), :func:`write_info` writes
``LEVEL: message`` and the terminator to that handler's stream itself, under its lock, and
flushes, as ``StreamHandler.emit`` would. Anything else (``--log-config``, ``--log-format json``,
a handler or filter an application added, a replaced formatter) takes the logging call, so
what a user configured always sees every record.
"""

from __future__ import annotations

import logging
from typing import TextIO

__all__ = ["LineHandler", "write_info"]

_INFO = logging.INFO


class LineHandler(logging.StreamHandler[TextIO]):
    """``configure_logging``'s text handler: ``LEVEL: message`` lines to a stream."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        #: The formatter :func:`write_info` stands in for (any other one set: the logging call).
        self.own = logging.Formatter("%(levelname)s: %(message)s")
        self.setFormatter(self.own)


def write_info(logger: logging.Logger, text: str) -> bool:
    """Write ``text`` as ``logger.info("%s", text)`` would write it, when only a
    :class:`LineHandler` would see that record; False, with nothing written, otherwise.

    The caller has checked ``logger.isEnabledFor(logging.INFO)``.
    """
    if logger.filters or logger.disabled:
        return False
    # The handlers Logger.callHandlers would call: up the tree while loggers propagate.
    handler = None
    node: logging.Logger | None = logger
    while node is not None:
        if node.handlers:
            if handler is not None or len(node.handlers) != 1:
                return False
            handler = node.handlers[0]
        if not node.propagate:
            break
        node = node.parent
    if (
        type(handler) is not LineHandler
        or handler.formatter is not handler.own
        or handler.filters
        or handler.level > _INFO
    ):
        return False
    line = f"{logging.getLevelName(_INFO)}: {text}{handler.terminator}"
    with handler.lock:  # type: ignore[union-attr]  # created by Handler.__init__
        try:
            stream = handler.stream
            stream.write(line)
            if hasattr(stream, "flush"):
                stream.flush()
        except RecursionError:  # as StreamHandler.emit
            raise
        except Exception:
            record = logger.makeRecord(logger.name, _INFO, "", 0, "%s", (text,), None)
            handler.handleError(record)
    return True
