"""The events an HTTP/1.1 connection produces and consumes.

Field names are lowercase ``bytes`` in every event the core produces, values are
``bytes`` exactly as received (optional whitespace stripped). Events given to
``send`` may use any case for names; the core writes them as given.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

#: A list of (name, value) pairs. Received names are lowercase.
Headers = Sequence[tuple[bytes, bytes]]


class Signal(enum.Enum):
    """What ``next_event`` returns when it has no event to give."""

    #: Feed more bytes with ``receive_data``.
    NEED_DATA = "NEED_DATA"
    #: The current request is complete; finish the response and call ``start_next_cycle``
    #: (or, after a 101, take ``trailing_data`` and hand the socket to the new protocol).
    PAUSED = "PAUSED"


NEED_DATA = Signal.NEED_DATA
PAUSED = Signal.PAUSED


@dataclass(frozen=True, slots=True)
class Request:
    """A request head: method, target and fields, as received."""

    method: bytes
    target: bytes
    headers: Headers
    #: b"1.1" or b"1.0".
    http_version: bytes = b"1.1"


@dataclass(frozen=True, slots=True)
class InformationalResponse:
    """A 1xx response: 100 Continue, 103 Early Hints, or 101 Switching Protocols."""

    status_code: int
    headers: Headers = ()
    reason: bytes = b""


@dataclass(frozen=True, slots=True)
class Response:
    """A final response head (status 200-599)."""

    status_code: int
    headers: Headers = ()
    reason: bytes = b""


@dataclass(frozen=True, slots=True)
class Data:
    """A piece of a message body."""

    data: bytes


@dataclass(frozen=True, slots=True)
class EndOfMessage:
    """The end of a message body, with trailer fields when the body was chunked."""

    trailers: Headers = ()


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed the connection cleanly between requests."""


#: Anything ``next_event`` can return.
ReceiveEvent = Request | Data | EndOfMessage | ConnectionClosed | Signal
#: Anything ``send`` accepts.
SendEvent = InformationalResponse | Response | Data | EndOfMessage
