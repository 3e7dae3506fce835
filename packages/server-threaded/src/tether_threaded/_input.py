"""``wsgi.input``: the request body, streamed from the loop to the application's thread.

The loop pulls body pieces out of the core into a :class:`Body` (bounded: above
:data:`BODY_HIGH` bytes it stops reading the socket) and the worker takes them out here. The
first read sends ``100 Continue`` when the client asked for it, and consuming the buffer below
:data:`BODY_LOW` lets the loop read on, so a slow application never makes the server hold an
unbounded body.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tether_threaded._connection import Connection

#: Buffered body bytes at which the loop stops reading the socket.
BODY_HIGH = 256 * 1024
#: Buffered body bytes below which a consuming worker lets the loop read again.
BODY_LOW = 64 * 1024


class ClientDisconnected(OSError):
    """The client went away, broke the protocol or timed out while the application was using
    the connection. Raised by ``wsgi.input`` reads and by response writes."""


class Body:
    """The request body pieces the loop has read and the application has not yet consumed.

    Guarded by the connection's lock; the worker waits on the connection's condition.
    """

    __slots__ = ("chunks", "eof", "error", "gated", "offset", "paused", "size", "waiting")

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        #: Bytes of ``chunks[0]`` already consumed.
        self.offset = 0
        #: Unconsumed bytes held.
        self.size = 0
        #: The core reported the end of the body.
        self.eof = False
        #: Why the body cannot be completed (protocol error, timeout, disconnect), if so.
        self.error: Exception | None = None
        #: The client waits for ``100 Continue``: the loop must not wait for the body yet.
        self.gated = False
        #: The loop stopped pulling body events (gated or buffer full); the consumer resumes it.
        self.paused = False
        #: The application waits for a piece (the loop notifies only then).
        self.waiting = False

    def feed(self, data: bytes) -> None:
        """Add a piece the core produced."""
        if data:
            self.chunks.append(data)
            self.size += len(data)


class Input:
    """The ``wsgi.input`` stream of one request (PEP 3333 "Input and Error Streams")."""

    __slots__ = ("_body", "_conn")

    def __init__(self, conn: Connection, body: Body) -> None:
        self._conn = conn
        self._body = body

    # -- helpers; all run with the connection lock held --------------------------------------

    def _ready(self) -> bool:
        """Wait until a piece is buffered (True) or the body ended (False)."""
        body = self._body
        conn = self._conn
        if body.gated:
            conn.release_body_gate(time.monotonic())
        while not body.chunks:
            if body.error is not None:
                raise ClientDisconnected(f"the request body cannot be read: {body.error}")
            if body.eof or conn.body is not body:
                # (The second: the response is complete, nothing will feed this body again.)
                return False
            if conn.closing:
                raise ClientDisconnected("the connection closed before the request body ended")
            body.waiting = True
            try:
                conn.cond.wait()
            finally:
                body.waiting = False
        return True

    def _take(self, limit: int) -> bytes:
        """Take up to ``limit`` bytes (``-1``: everything buffered) without waiting."""
        body = self._body
        chunks = body.chunks
        out: list[bytes] = []
        taken = 0
        while chunks and (limit < 0 or taken < limit):
            first = chunks[0]
            start = body.offset
            end = len(first) if limit < 0 else min(len(first), start + limit - taken)
            out.append(first[start:end] if start or end != len(first) else first)
            taken += end - start
            if end == len(first):
                chunks.popleft()
                body.offset = 0
            else:
                body.offset = end
        body.size -= taken
        self._consumed()
        return out[0] if len(out) == 1 else b"".join(out)

    def _consumed(self) -> None:
        body = self._body
        if body.paused and body.size < BODY_LOW and not body.gated:
            body.paused = False
            self._conn.pump(time.monotonic())

    def _take_line(self, limit: int) -> tuple[bytes, bool]:
        """Take bytes up to and including a newline (or ``limit``); report if the line ended."""
        body = self._body
        first = body.chunks[0]
        start = body.offset
        end = first.find(b"\n", start) + 1
        complete = end > 0
        if not complete:
            end = len(first)
        if limit >= 0 and end - start > limit:
            end = start + limit
            complete = True
        piece = first[start:end]
        if end == len(first):
            body.chunks.popleft()
            body.offset = 0
        else:
            body.offset = end
        body.size -= len(piece)
        self._consumed()
        return piece, complete

    # -- the file-like interface ---------------------------------------------------------------

    def read(self, size: int | None = -1) -> bytes:
        """Read up to ``size`` bytes (all of the rest when ``size`` is negative or None).

        Returns fewer bytes than asked only at the end of the body.
        """
        want = -1 if size is None or size < 0 else size
        parts: list[bytes] = []
        got = 0
        with self._conn.lock:
            while want < 0 or got < want:
                if not self._ready():
                    break
                piece = self._take(want - got if want >= 0 else -1)
                parts.append(piece)
                got += len(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readline(self, size: int | None = -1) -> bytes:
        """Read one line, newline included (at most ``size`` bytes when it is not negative)."""
        limit = -1 if size is None or size < 0 else size
        parts: list[bytes] = []
        with self._conn.lock:
            while limit != 0 and self._ready():
                piece, complete = self._take_line(limit)
                parts.append(piece)
                if limit > 0:
                    limit -= len(piece)
                if complete:
                    break
        return b"".join(parts)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """Read lines until the end of the body, or until ``hint`` bytes have been read."""
        lines: list[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self) -> Iterator[bytes]:
        """Iterate over the lines of the body."""
        while True:
            line = self.readline()
            if not line:
                return
            yield line


class _NoBody:
    """``wsgi.input`` of a request without a body: always at its end (stateless, shared)."""

    __slots__ = ()

    def read(self, size: int | None = -1) -> bytes:
        """Nothing to read."""
        return b""

    def readline(self, size: int | None = -1) -> bytes:
        """Nothing to read."""
        return b""

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """Nothing to read."""
        return []

    def __iter__(self) -> Iterator[bytes]:
        """No lines."""
        return iter(())


#: The one ``wsgi.input`` for requests that have no body.
NO_BODY = _NoBody()

__all__ = ["BODY_HIGH", "BODY_LOW", "NO_BODY", "Body", "ClientDisconnected", "Input"]
