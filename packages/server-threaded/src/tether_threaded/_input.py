"""``wsgi.input``: the request body, gathered whole by the loop before the application runs,
or (``--request-body stream``) read by the application as it arrives.

By default a worker never waits on a client (``--threads`` clients trickling their bodies would
stop the server): the loop reads the body into a :class:`tether_server.wsgi_body.BodyBuffer`,
in memory up to 256 KiB and in a temporary file beyond, and the application gets a complete,
seekable stream with ``CONTENT_LENGTH`` set, as waitress does.

Under ``--request-body stream`` (gunicorn's way) the worker runs at the head and reads a
:class:`StreamedBody` (``wsgi.input_terminated``), waiting on its client for at most the core's
body timeout per stall; the loop holds at most :data:`STREAM_HIGH` unread bytes.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Protocol

#: ``--request-body stream``: unread body bytes the loop holds before it stops reading.
STREAM_HIGH = 256 * 1024


class ClientDisconnected(OSError):
    """The client went away, broke the protocol or timed out while the application was using
    the connection. Raised by response writes."""


class Source(Protocol):
    """The connection a :class:`StreamedBody` reads from."""

    #: The connection's lock, and its condition on that lock (made by the first waiter, with
    #: the lock held): notified when bytes come or it closes.
    lock: threading.Lock

    @property
    def cond(self) -> threading.Condition: ...

    #: The connection is closing (timed out, broken, or the server stops).
    closing: bool

    def notify(self) -> None:
        """Wake the threads waiting on ``cond`` (lock held)."""

    def resume_body(self) -> None:
        """The application took bytes: read more of the body (lock held)."""


class StreamedBody:
    """``wsgi.input`` under ``--request-body stream``: the body as the loop reads it.

    The loop adds pieces (:meth:`feed`) and the end (:meth:`end`) under the connection's lock;
    the application's reads wait for them, and raise :class:`ClientDisconnected` once the client
    has gone (or the core gave up on a stalled body).
    """

    __slots__ = ("buf", "done", "paused", "source")

    def __init__(self, source: Source) -> None:
        self.source = source
        self.buf = bytearray()
        #: The last piece came (or the exchange is over): no more bytes will.
        self.done = False
        #: The loop stopped taking the body from the core until the application reads.
        self.paused = False

    # -- the loop's side (connection lock held) ---------------------------------------------------

    def feed(self, data: bytes) -> bool:
        """Add a piece; True while the loop may read more (fewer than STREAM_HIGH unread)."""
        self.buf += data
        self.source.notify()
        return len(self.buf) < STREAM_HIGH

    def end(self) -> None:
        """The body is complete."""
        self.done = True
        self.source.notify()

    def detach(self) -> None:
        """The exchange is over: later reads get what is buffered, then the end."""
        self.done = True
        self.paused = False

    # -- the application's side (worker thread) ---------------------------------------------------

    def _take(self, size: int, line: bool) -> bytes:
        source = self.source
        with source.lock:
            buf = self.buf
            while not self.done:
                end = buf.find(b"\n") + 1 if line else 0
                if end or len(buf) >= size:
                    break
                if source.closing:
                    raise ClientDisconnected("the client went away before the end of the body")
                if self.paused:
                    self.paused = False
                    source.resume_body()
                    continue
                source.cond.wait()
            end = buf.find(b"\n") + 1 if line else 0
            take = min(size, end) if end else size
            data = bytes(buf[:take])
            del buf[:take]
            if self.paused and len(buf) < STREAM_HIGH // 2:
                self.paused = False
                source.resume_body()
            return data

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all the rest for a negative or None size); fewer only at the
        end of the body."""
        return self._take(sys.maxsize if size is None or size < 0 else size, False)

    def readline(self, size: int | None = -1) -> bytes:
        """One line, its newline included (at most ``size`` bytes)."""
        return self._take(sys.maxsize if size is None or size < 0 else size, True)

    def readlines(self, hint: int = -1) -> list[bytes]:
        """The remaining lines (PEP 3333 lets a server ignore ``hint``)."""
        return list(self)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")

    def close(self) -> None:
        """Nothing to free (the loop owns the bytes)."""


__all__ = ["STREAM_HIGH", "ClientDisconnected", "Source", "StreamedBody"]
