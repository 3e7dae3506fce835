"""Log lines to stderr, and the access line's short way there: the bytes the logging call
writes, without its record.

:func:`tether_server.startup.configure_logging` installs one :class:`LineHandler` on the
``tether`` logger: ``LEVEL: message`` text lines, or with ``--log-format json`` one
:class:`JSONFormatter` object per line. Either way the controls a terminal acts on (C0 but
HTAB, DEL, C1 such as U+009B CSI, U+2028/U+2029; and LF within a message) are written escaped,
wherever the text came from.

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
import re
import time
import traceback
from typing import Any, TextIO

__all__ = ["JSONFormatter", "LineHandler", "TextFormatter", "write_info"]

_INFO = logging.INFO
# json.dumps with options makes an encoder per call; one made here does the same work.
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)
# The time stamp's whole second, remade when the second changes (threads may race to remake it,
# each with a right value): the clock's alone, nothing a client sends.
_stamp: tuple[int, str] = (-1, "")


# What a terminal or a log viewer acts on, in a line this handler writes: C0 controls but HTAB
# and LF (a traceback's lines), DEL, C1 controls (U+009B is CSI, read by a terminal as ESC "["),
# and the Unicode line and paragraph separators (and LF, in a message). Client text reaches log
# lines in exception messages (an application's ``ValueError(f"bad name {name}")`` with a form
# field's name) and in anything a future line forgets to escape; each is written escaped, as
# \xNN (text) or \uNNNN (JSON, where C0 is already escaped by the encoder but C1 was not).
_TEXT_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_JSON_CONTROL = re.compile("[\x7f-\x9f\u2028\u2029]")


def _text_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


_MESSAGE_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def _safe_text(line: str, pattern: re.Pattern[str] = _TEXT_CONTROL) -> str:
    """``line`` with the controls a terminal acts on escaped (a printable line, the usual
    one, is returned after one C-level check)."""
    return line if line.isprintable() else pattern.sub(_text_escape, line)


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
    line = _ENCODER.encode(out)
    return line if line.isprintable() else _JSON_CONTROL.sub(_json_escape, line)


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


def _traceback_text(ei: Any) -> str:
    """``logging.Formatter.formatException``'s text, with each exception's message and notes
    (in a chain or a group) made one line: a client's bytes reach them (an application's
    ``ValueError(f"bad name {name}")``), and a line break there could forge a record. The
    traceback's own lines (frames, source, the chain's sentences) keep their breaks."""
    try:
        top = traceback.TracebackException(ei[0], ei[1], ei[2], compact=True)
    except Exception:  # an exception whose formatting fails: the logging module's own text
        return logging.Formatter().formatException(ei)
    todo = [top]
    seen: set[int] = set()
    while todo:
        te = todo.pop()
        if id(te) in seen:
            continue
        seen.add(id(te))
        # TracebackException keeps the message as _str (CPython 3.11 to 3.14): without it,
        # the text is the logging module's, as before.
        text = getattr(te, "_str", None)
        if isinstance(text, str):
            te._str = _safe_text(text, _MESSAGE_CONTROL)  # type: ignore[attr-defined]
        notes = getattr(te, "__notes__", None)
        if isinstance(notes, list):
            te.__notes__ = [_safe_text(str(n), _MESSAGE_CONTROL) for n in notes]  # type: ignore[attr-defined]
        todo += [t for t in (te.__cause__, te.__context__) if t is not None]
        todo += getattr(te, "exceptions", None) or []
    return "".join(top.format()).removesuffix("\n")


class TextFormatter(logging.Formatter):
    """``LEVEL: message`` (and a traceback), with the controls a terminal acts on escaped."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The message: one line, every control but HTAB escaped (LF too: a line break in
        a message would start what reads as another record)."""
        return _safe_text(super().formatMessage(record), _MESSAGE_CONTROL)

    def formatException(self, ei: Any) -> str:
        """A traceback: its lines, with every other control escaped, and a line break inside
        an exception's message or note escaped too (it would start what reads as a record)."""
        return _safe_text(_traceback_text(ei))

    def formatStack(self, stack_info: str) -> str:
        """A stack: its lines, with every other control escaped."""
        return _safe_text(super().formatStack(stack_info))


class LineHandler(logging.StreamHandler[TextIO]):
    """``configure_logging``'s handler: ``LEVEL: message`` lines to a stream, or with ``json``
    one :class:`JSONFormatter` object per line."""

    def __init__(self, stream: TextIO, *, json: bool = False) -> None:
        super().__init__(stream)
        #: Whether lines are JSON objects.
        self.json = json
        #: The formatter :func:`write_info` stands in for (any other one set: the logging call).
        self.own: logging.Formatter = JSONFormatter() if json else TextFormatter()
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
        line = f"{level}: {_safe_text(text, _MESSAGE_CONTROL)}{handler.terminator}"
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
