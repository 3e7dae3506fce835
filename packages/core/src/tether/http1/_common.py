"""What the server and the client side of a connection share.

Both sides keep the same bookkeeping (limits, the two states, keep-alive, the
clock, the bytes after a protocol switch), hold received bytes under the same
``Limits.max_buffered_bytes`` rule, and write chunked bodies and trailers the
same way. :class:`ConnectionBase` and the two writers below are that part,
written once.
"""

from __future__ import annotations

from tether.errors import LocalProtocolError
from tether.http1._body import BodyReader
from tether.http1._events import Headers
from tether.http1._send import fields_ok
from tether.http1._state import HTTPState
from tether.limits import Limits

_IDLE = HTTPState.IDLE
LAST_CHUNK = b"0\r\n\r\n"


class ConnectionBase:
    """The state both sides of an HTTP/1.1 connection keep (internal base class)."""

    __slots__ = (
        "_body_wait_since",
        "_head_started",
        "_keep_alive",
        "_limits",
        "_now",
        "_our_state",
        "_their_state",
        "_trailing",
    )

    def __init__(self, limits: Limits, now: float | None) -> None:
        self._limits = limits
        self._our_state = _IDLE
        self._their_state = _IDLE
        self._keep_alive = True
        self._now = now
        self._trailing = b""
        # When the current head began, and when the core started waiting for body bytes
        # (None: not waiting).
        self._head_started: float | None = None
        self._body_wait_since: float | None = None

    @property
    def limits(self) -> Limits:
        """The limits this connection enforces on what the peer sends."""
        return self._limits

    @property
    def our_state(self) -> HTTPState:
        """Where our side's message (the response, or the request) is in the current cycle."""
        return self._our_state

    @property
    def their_state(self) -> HTTPState:
        """Where the peer's message is in the current cycle."""
        return self._their_state

    @property
    def keep_alive(self) -> bool:
        """Whether the connection may carry another request after the current one."""
        return self._keep_alive

    @property
    def trailing_data(self) -> bytes:
        """After a protocol switch (a 101, or a 2xx to CONNECT): the bytes for the new protocol.

        Those that followed the head; on a client, bytes received later are appended.
        """
        return self._trailing

    def _hold(self, reader: BodyReader, data: bytes) -> None:
        """Refuse ``data`` after EOF or over ``Limits.max_buffered_bytes``, else buffer it."""
        if reader.eof:
            raise LocalProtocolError("data received after EOF")
        held = reader.buffered()
        if held > self._limits.max_buffered_bytes:
            raise LocalProtocolError(
                f"{held} bytes buffered without next_event() draining them "
                f"(Limits.max_buffered_bytes is {self._limits.max_buffered_bytes})"
            )
        reader.feed(data)


def chunk(data: bytes) -> bytes:
    """``data`` as one chunk (RFC 9112 7.1); nothing for no data (an empty chunk ends a body)."""
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


def last_chunk(trailers: Headers) -> bytes:
    """The last chunk and the trailer section, or LocalProtocolError for an invalid field."""
    if not trailers:
        return LAST_CHUNK
    try:
        block = b"".join([b"%s: %s\r\n" % (name, value) for name, value in trailers])
    except TypeError:
        raise LocalProtocolError("trailer names and values must be bytes") from None
    if not fields_ok(trailers, block, len(trailers)):
        raise LocalProtocolError("invalid trailer field name or value")
    return b"0\r\n%s\r\n" % block
