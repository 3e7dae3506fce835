"""The events an HTTP/1.1 connection produces and consumes.

Field names are lowercase ``bytes`` in every event the core produces, values are
``bytes`` exactly as received (optional whitespace stripped). Events given to
``send`` may use any case for names, and names and values must be ``bytes`` (a
``str`` is refused with :class:`~tether.errors.LocalProtocolError`, not
encoded). The core writes the fields as given, except the ones it owns:
Content-Length, Transfer-Encoding and Connection are written by the core, in
lowercase, after the others.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

#: A list of (name, value) pairs. Received names are lowercase.
Headers = Sequence[tuple[bytes, bytes]]


class Signal(enum.Enum):
    """What ``next_event`` returns when it has no event to give.

    ``NEED_DATA``: feed more bytes with ``receive_data``, then call ``next_event``
    again.

    ``PAUSED``: the current request is complete (or the connection failed);
    nothing more is read until the response is finished and ``start_next_cycle``
    is called (after a 101, take ``trailing_data`` and hand the socket to the new
    protocol). Then call ``next_event`` again at once: a pipelined request may
    already be buffered, and no new bytes will arrive to prompt you.
    """

    NEED_DATA = "NEED_DATA"
    PAUSED = "PAUSED"


#: Feed more bytes (see :class:`Signal`). ``Final``, so ``event is NEED_DATA`` narrows.
NEED_DATA: Final = Signal.NEED_DATA
#: The request is complete: finish the response, ``start_next_cycle`` (see :class:`Signal`).
PAUSED: Final = Signal.PAUSED


@dataclass(frozen=True, slots=True)
class Request:
    """A request head: method, target and fields.

    The method and target are as received; field names are lowercase (values
    as received, optional whitespace stripped); ``http_version`` is ``b"1.1"``
    or ``b"1.0"``. For an absolute-form target the ``host`` field is the
    target's authority (RFC 9112 3.2.2).
    """

    method: bytes
    target: bytes
    headers: Headers
    #: b"1.1" or b"1.0".
    http_version: bytes = b"1.1"


# The parser builds one Request per request. The frozen dataclass's __init__ sets each field
# through object.__setattr__, which looks the name up on the class every time; setting the
# slots through their own descriptors builds the same object for about 60% of the cost. Only
# the parser uses this, with values it has already checked.
_set_method = vars(Request)["method"].__set__
_set_target = vars(Request)["target"].__set__
_set_headers = vars(Request)["headers"].__set__
_set_http_version = vars(Request)["http_version"].__set__


def new_request(method: bytes, target: bytes, headers: Headers, http_version: bytes) -> Request:
    """``Request(method, target, headers, http_version)``, built without ``__init__``."""
    request = Request.__new__(Request)
    _set_method(request, method)
    _set_target(request, target)
    _set_headers(request, headers)
    _set_http_version(request, http_version)
    return request


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


_set_data = vars(Data)["data"].__set__


def new_data(data: bytes) -> Data:
    """``Data(data)``, built without ``__init__`` (for the body readers, as ``new_request``)."""
    event = Data.__new__(Data)
    _set_data(event, data)
    return event


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
