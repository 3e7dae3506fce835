"""Log lines to stderr, and the access line's short way there: the bytes the logging call
writes, without its record.

:func:`tether_server.startup.configure_logging` installs one :class:`LineHandler` on the
``tether`` logger: ``LEVEL: message`` text lines, or with ``--log-format json`` one
:class:`JSONFormatter` object per line.

An access line is one INFO record per request, and with the logging module a record costs
about 53,000 machine instructions more than the text line itself (the ``LogRecord``'s time,
thread, process and module names, the filter and handler calls, the formatter), and a JSON
line about 85,000 more. When the only thing an INFO line of a logger would reach is that
handler, with its own formatter and no filters anywhere, :func:`write_info` writes the line
the formatter would make to the handler's stream itself, under its lock, and flushes, as
``StreamHandler.emit`` would. Anything else (``--log-config``, a handler or filter an
application added, a replaced formatter) takes the logging call, so what a user configured
always sees every record.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, TextIO

__all__ = ["JSONFormatter", "LineHandler", "write_info"]

_INFO = logging.INFO
# json.dumps with options makes an encoder per call; one made here does the same work.
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)
# The time stamp's whole second, remade when the second changes (threads may race to remake it,
# each with a right value): the clock's alone, nothing a client sends.
_stamp: tuple[int, str] = (-1, "")


def _json_line(
    created: float,
    level: str,
    name: str,
    message: str,
    fields: object,
    *,
    exception: str | None = None,
) -> str:
    """One JSON log line, as :class:`JSONFormatter` writes a record with these parts."""
    global _stamp
    second = int(created)
    if _stamp[0] != second:
        _stamp = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    stamp = _stamp[1]
    out: dict[str, Any] = {
        "time": f"{stamp}.{int((created - int(created)) * 1000):03d}Z",
        "level": level.lower(),
        "logger": name,
        "message": message,
    }
    if isinstance(fields, dict):
        out.update(fields)
    if exception:
        out["exception"] = exception
    return _ENCODER.encode(out)


class JSONFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (UTC, ISO 8601, milliseconds), ``level``,
    ``logger``, ``message``, ``exception`` when there is one, and the fields a server attached
    as ``extra={"tether": {...}}`` (an access line's client, method, path, status, bytes,
    duration, request id...)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        exception = self.formatException(record.exc_info) if record.exc_info else None
        return _json_line(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            getattr(record, "tether", None),
            exception=exception,
        )


class LineHandler(logging.StreamHandler[TextIO]):
    """``configure_logging``'s handler: ``LEVEL: message`` lines to a stream, or with ``json``
    one :class:`JSONFormatter` object per line."""

    def __init__(self, stream: TextIO, *, json: bool = False) -> None:
        super().__init__(stream)
        #: Whether lines are JSON objects.
        self.json = json
        #: The formatter :func:`write_info` stands in for (any other one set: the logging call).
        self.own = JSONFormatter() if json else logging.Formatter("%(levelname)s: %(message)s")
        self.setFormatter(self.own)


def write_info(logger: logging.Logger, text: str, fields: dict[str, Any] | None = None) -> bool:
    """Write ``text`` as ``logger.info("%s", text, extra={"tether": fields})`` would write it,
    when only a :class:`LineHandler` would see that record; False, with nothing written,
    otherwise.

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
    level = logging.getLevelName(_INFO)
    if handler.json:
        line = _json_line(time.time(), level, logger.name, text, fields) + handler.terminator
    else:
        line = f"{level}: {text}{handler.terminator}"
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
