"""What a server attaches to each exchange when asked: a request id, the trace id, and response
headers of its own (issue 15, "Logs and traces").

Four options, all off by default, so a server that uses none of them does no work per request:

- ``--request-id-header NAME`` (say ``X-Request-Id``): the request's id is the client's value of
  that field when it is a token of visible ASCII characters (RFC 9110 ``tchar``) of at most
  :data:`MAX_REQUEST_ID` bytes, else a new one (a uuid4 as 32 hex digits). The id is echoed on the
  response under the same name (unless the application set that field), handed to the
  application (ASGI ``scope["extensions"]["tether.request_id"]``, WSGI
  ``environ["tether.request_id"]``) and written on the access line (text: ``request_id=...``
  at the end; JSON: a ``request_id`` field). A proxy in front usually sets the field; a client
  can too, so the id is a correlation handle, never a credential.
- ``--trace-context``: the W3C ``traceparent`` (:mod:`tether.tracecontext`, read strictly) gives
  the trace id written on the access line (text: ``trace_id=...``; JSON: ``trace_id``) and a
  ``tether.trace`` dict for the application (``trace_id``, ``parent_id``, ``flags``,
  ``sampled``, ``tracestate``), under the same keys as the request id.
- ``--header NAME:VALUE`` (repeatable, as uvicorn's) and ``--security-headers`` (a preset, see
  :data:`SECURITY_HEADERS`; ``Strict-Transport-Security`` only when serving TLS): response
  fields added to every response that lacks them (a value the application set wins).

The tag also carries ``--access-log-format`` (:mod:`tether_server.accesslog`), compiled once,
and when the format has duration atoms, the moment the request head came: so both servers
get the format through the one object they already pass along, and do nothing more per
request without it.

:class:`Tagger` holds these options (one per server run, built by
:class:`tether_server.config.ServerConfig`); :meth:`Tagger.tag` reads one request's fields and
gives its :class:`Tag`, which the server passes to the core's
:class:`tether.serving_cycle.ResponseCycle` (``extra`` headers, ``tag``) and reads back when it
logs the access line (:func:`log_access`) or another line about the request (:func:`tagged`).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tether.serving_cycle import ResponseCycle
from tether.tracecontext import TraceContext, trace_context
from tether_server.accesslog import AccessFormat
from tether_server.logline import write_info

#: The longest request id taken from a client, in bytes; a longer one is replaced.
MAX_REQUEST_ID = 128

#: ``--security-headers``: what OWASP's Secure Headers project and the common frameworks
#: (Django's SecurityMiddleware, helmet) send by default. X-XSS-Protection is left out: the
#: browsers that read it are gone, and its filter was itself a source of leaks.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"x-frame-options", b"SAMEORIGIN"),
)
#: Added by ``--security-headers`` on TLS only: a browser ignores it over plain HTTP, and
#: sending it there would promise HTTPS the server may not have. One year, without
#: ``includeSubDomains`` (which would bind every other host of the domain).
HSTS = (b"strict-transport-security", b"max-age=31536000")

_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")


@dataclass(frozen=True, slots=True)
class Tag:
    """What the server attached to one exchange."""

    #: The request id (None without ``--request-id-header``).
    request_id: str | None
    #: The request's valid trace context (None without ``--trace-context`` or a valid one).
    trace: TraceContext | None
    #: Response fields to add when the application did not set them (lowercase names).
    headers: tuple[tuple[bytes, bytes], ...]
    #: ``--access-log-format`` (None: the default line).
    access: AccessFormat | None = None
    #: When the request head came (``time.perf_counter()``), if the format needs durations.
    started: float = 0.0

    def app_entries(self) -> dict[str, Any]:
        """The keys this tag adds to an ASGI scope's ``extensions`` or a WSGI environ."""
        out: dict[str, Any] = {}
        if self.request_id is not None:
            out["tether.request_id"] = self.request_id
        trace = self.trace
        if trace is not None:
            parent = trace.parent
            out["tether.trace"] = {
                "trace_id": parent.trace_id,
                "parent_id": parent.parent_id,
                "flags": parent.flags,
                "sampled": parent.sampled,
                "tracestate": list(trace.state),
            }
        return out

    def log_fields(self) -> dict[str, str]:
        """The fields an access line carries for this tag (text suffix and JSON keys)."""
        out: dict[str, str] = {}
        if self.request_id is not None:
            out["request_id"] = self.request_id
        if self.trace is not None:
            out["trace_id"] = self.trace.parent.trace_id
        return out


def check_field_name(name: str) -> str:
    """``name`` if it is a valid header field name (an RFC 9110 token), else ValueError."""
    if _TOKEN.fullmatch(name.encode("ascii", "replace")) is None:
        raise ValueError(f"not a valid field name: {name!r}")
    return name


def parse_header_option(text: str) -> tuple[str, str]:
    """``--header NAME:VALUE`` as a pair; raises ValueError for a bad name or value."""
    name, sep, value = text.partition(":")
    name = name.strip()
    value = value.strip()
    if not sep or not name:
        raise ValueError(f"expected NAME:VALUE, got {text!r}")
    check_field_name(name)
    if _FIELD_VALUE.fullmatch(value) is None:
        raise ValueError(f"not a valid field value (visible ASCII only): {value!r}")
    return name, value


class Tagger:
    """The tagging options of one server run; :meth:`tag` is called once per request."""

    __slots__ = ("_access", "_constant", "_id_name", "_timed", "_trace", "active", "headers")

    def __init__(
        self,
        *,
        request_id_header: str | None = None,
        trace_context: bool = False,
        headers: Sequence[tuple[str, str]] = (),
        security_headers: bool = False,
        tls: bool = False,
        access_format: AccessFormat | None = None,
    ) -> None:
        fixed = [(name.lower().encode("ascii"), value.encode("ascii")) for name, value in headers]
        if security_headers:
            fixed += SECURITY_HEADERS
            if tls:
                fixed.append(HSTS)
        #: The fields added to every response (``--header`` first: it wins over the preset).
        self.headers: tuple[tuple[bytes, bytes], ...] = tuple(_first_of_each(fixed))
        self._id_name = request_id_header.lower().encode("ascii") if request_id_header else None
        self._trace = trace_context
        self._access = access_format
        self._timed = access_format is not None and access_format.timed
        #: Whether any option is on: when False, servers skip tagging entirely.
        self.active = bool(
            self.headers or self._id_name is not None or trace_context or access_format
        )
        # The tag of every request when nothing depends on the request: no allocation each time.
        self._constant: Tag | None = (
            Tag(None, None, self.headers, access_format)
            if self._id_name is None and not trace_context and not self._timed
            else None
        )

    def tag(self, headers: Sequence[tuple[bytes, bytes]]) -> Tag:
        """The tag of a request with these header fields (lowercase names, as the core's)."""
        if self._constant is not None:
            return self._constant
        id_name = self._id_name
        request_id: str | None = None
        extra = self.headers
        if id_name is not None:
            for name, value in headers:
                if name == id_name:
                    if len(value) <= MAX_REQUEST_ID and _TOKEN.fullmatch(value) is not None:
                        request_id = value.decode("ascii")
                    break
            if request_id is None:
                request_id = new_request_id()
            if not any(name == id_name for name, _ in extra):
                extra = ((id_name, request_id.encode("ascii")), *extra)
        trace = trace_context(headers) if self._trace else None
        started = time.perf_counter() if self._timed else 0.0
        return Tag(request_id, trace, extra, self._access, started)


def new_request_id() -> str:
    """A fresh request id: a random (version 4) UUID as 32 hex digits, made without building a
    :class:`uuid.UUID` (a third of ``uuid.uuid4().hex``'s cost)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 9562 variant
    return raw.hex()


def _first_of_each(pairs: Iterable[tuple[bytes, bytes]]) -> Iterable[tuple[bytes, bytes]]:
    seen: set[bytes] = set()
    for name, value in pairs:
        if name not in seen:
            seen.add(name)
            yield name, value


def log_access(
    logger: logging.Logger,
    cycle: ResponseCycle,
    note: str = "",
    *,
    websocket: tuple[int, float] | None = None,
    environ: Mapping[str, Any] | None = None,
) -> None:
    """Log the access line of ``cycle`` (at INFO), with its :class:`Tag`'s fields: at the end
    of the text line, and as keys of the JSON object (``--log-format json``).

    ``websocket`` is a session's close code and duration in seconds (noted as
    ``ws 1000 2.513s``); ``environ`` is the request's WSGI environ (for ``%({NAME}e)s``).
    With ``--access-log-format``, the line is that format's and the tag's fields go only in
    the JSON object.
    """
    if not logger.isEnabledFor(logging.INFO):
        return
    tag = cycle.tag
    if isinstance(tag, Tag):
        msg, args, extra = _tagged_line(cycle, tag, note, websocket, environ)
    else:
        if websocket is not None:
            note = f"ws {websocket[0]} {websocket[1]:.3f}s"
        msg, args, extra = "%s", (cycle.log_line(note),), None
    # The common case: nothing configured but tether's own handler (tether_server.logline).
    if write_info(logger, msg % args, None if extra is None else extra["tether"]):
        return
    # What logger.info() does, less its walk up the stack (findCaller: a sixth of the cost of
    # a line): the record names this function and line, as the walk would have.
    where = sys._getframe()
    record = logger.makeRecord(
        logger.name,
        logging.INFO,
        where.f_code.co_filename,
        where.f_lineno,
        msg,
        args,
        None,
        "log_access",
        extra,
    )
    logger.handle(record)


def _tagged_line(
    cycle: ResponseCycle,
    tag: Tag,
    note: str,
    websocket: tuple[int, float] | None,
    environ: Mapping[str, Any] | None,
) -> tuple[str, tuple[str, ...], dict[str, Any] | None]:
    """The access record's message, arguments and ``extra`` for a tagged exchange."""
    fields = tag.log_fields()
    extra = {"tether": fields} if fields else None
    access = tag.access
    if access is not None:
        elapsed = time.perf_counter() - tag.started if access.timed else 0.0
        code = None if websocket is None else websocket[0]
        return "%s", (access.line(cycle, tag, elapsed, environ, code),), extra
    if websocket is not None:
        note = f"ws {websocket[0]} {websocket[1]:.3f}s"
    line = cycle.log_line(note)
    if not fields:
        return "%s", (line,), None
    return "%s%s", (line, _suffix(fields)), extra


def app_entries(cycle: ResponseCycle) -> dict[str, Any]:
    """The keys ``cycle``'s :class:`Tag` adds to the ASGI scope's ``extensions`` or the WSGI
    environ (empty when it has none)."""
    tag = cycle.tag
    return tag.app_entries() if isinstance(tag, Tag) else {}


def tagged(cycle: ResponseCycle) -> tuple[str, dict[str, Any] | None]:
    """For any other line logged about ``cycle``'s request (an application's exception): the
    text to append (``" request_id=..."``, or empty) and the ``extra`` for the logging call."""
    tag = cycle.tag
    fields = tag.log_fields() if isinstance(tag, Tag) else None
    if not fields:
        return "", None
    return _suffix(fields), {"tether": fields}


def _suffix(fields: dict[str, str]) -> str:
    return "".join(f" {key}={value}" for key, value in fields.items())


__all__ = [
    "HSTS",
    "MAX_REQUEST_ID",
    "SECURITY_HEADERS",
    "Tag",
    "Tagger",
    "app_entries",
    "check_field_name",
    "log_access",
    "new_request_id",
    "parse_header_option",
    "tagged",
]
