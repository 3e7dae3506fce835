"""Errors raised by the Tether core.

Every error is a :class:`ProtocolError`. The peer's faults are
:class:`RemoteProtocolError`; the caller's misuse of an API is
:class:`LocalProtocolError`. Each carries ``status_hint``, the HTTP status a
server should answer with (when it still can), and ``close_code``, the
WebSocket close code to send where one applies.

The fine-grained subclasses let a server or a test tell *why* a message was
refused without parsing error strings.
"""

from __future__ import annotations

from typing import ClassVar


class ProtocolError(Exception):
    """Base class of every protocol error.

    ``status_hint`` is the HTTP status to answer with; ``close_code`` is the
    WebSocket close code (1002 by default) for errors raised on a WebSocket.
    Both belong to the class: a subclass states its own, so the type alone says
    how to answer. (They are ``ClassVar``s because a class-body default on an
    Exception subclass is missing at run time once mypyc compiles the class.)
    """

    status_hint: ClassVar[int] = 400
    close_code: ClassVar[int] = 1002

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RemoteProtocolError(ProtocolError):
    """The peer sent something that breaks the protocol or a configured limit."""


class LocalProtocolError(ProtocolError):
    """The caller asked the core to do something the protocol forbids."""

    status_hint = 500
    close_code = 1011


class ShortBody(LocalProtocolError):
    """A message ended before the length its ``Content-Length`` announced.

    The head is out, so the peer waits for bytes that will not come: the message is cut and
    the connection must close. A server meets this when a file shrinks while it is sent (a log
    rotated or truncated under a download), an operational event rather than a bug in code, so
    it logs one line for it, not a traceback.
    """


# ---- HTTP: the peer's faults, by the status they map to ---------------------------------------


class BadRequest(RemoteProtocolError):
    """400: malformed or ambiguous request syntax."""

    status_hint = 400


class InvalidFraming(BadRequest):
    """400: the message's length cannot be determined safely (smuggling guard).

    Covers Transfer-Encoding with Content-Length, bad or conflicting
    Content-Length values, chunked not final, malformed chunk lines.
    """


class IncompleteMessage(BadRequest):
    """400: the peer closed the connection in the middle of a message."""


class RequestTimeout(RemoteProtocolError):
    """408: the request head did not arrive in time."""

    status_hint = 408


class ContentTooLarge(RemoteProtocolError):
    """413: the body exceeds ``Limits.max_body_size``."""

    status_hint = 413


class RequestLineTooLong(RemoteProtocolError):
    """414: the request line exceeds ``Limits.max_request_line``."""

    status_hint = 414


class HeaderFieldsTooLarge(RemoteProtocolError):
    """431: a header limit was exceeded."""

    status_hint = 431


class HeaderLineTooLong(HeaderFieldsTooLarge):
    """431: one field line exceeds ``Limits.max_header_line``."""


class TooManyHeaders(HeaderFieldsTooLarge):
    """431: more field lines than ``Limits.max_header_count``."""


class HeadTooLarge(HeaderFieldsTooLarge):
    """431: the whole head (or trailer section) exceeds its size limit."""


class UnsupportedTransferCoding(RemoteProtocolError):
    """501: a transfer coding other than ``chunked`` (RFC 9112 section 6.1)."""

    status_hint = 501


class UnsupportedVersion(RemoteProtocolError):
    """505: an HTTP version other than 1.0 and 1.1 (including the HTTP/2 preface)."""

    status_hint = 505


def cut_short(exc: BaseException | None) -> ShortBody | None:
    """The :class:`~tether.errors.ShortBody` that ``exc`` is, wraps or was raised while
    handling, else None.

    A server logs such a failure as one warning line (the response was cut; a file shrank
    under a download), not as an application traceback. The search is short: a framework's
    wrapper or two (``__cause__``, ``__context__``, the members of an exception group).
    """
    pending: list[tuple[BaseException, int]] = [] if exc is None else [(exc, 0)]
    while pending:
        found, depth = pending.pop()
        if isinstance(found, ShortBody):
            return found
        if depth >= 4:
            continue
        members = getattr(found, "exceptions", None)  # an exception group (Python 3.11+)
        if isinstance(members, tuple):
            pending.extend((member, depth + 1) for member in members)
        link = found.__cause__ or found.__context__
        if link is not None:
            pending.append((link, depth + 1))
    return None


__all__ = [
    "BadRequest",
    "ContentTooLarge",
    "HeadTooLarge",
    "HeaderFieldsTooLarge",
    "HeaderLineTooLong",
    "IncompleteMessage",
    "InvalidFraming",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "RequestLineTooLong",
    "RequestTimeout",
    "ShortBody",
    "TooManyHeaders",
    "UnsupportedTransferCoding",
    "UnsupportedVersion",
    "cut_short",
]
