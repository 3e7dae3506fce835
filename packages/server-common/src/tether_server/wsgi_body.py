"""A request body gathered whole before a WSGI application runs, for any WSGI server.

A server that will not let a worker wait on a slow client (waitress's way, and
``tether-threaded``'s default) reads the whole body before the application runs and hands it
over as a complete, seekable ``wsgi.input`` (see :func:`tether.serving_wsgi.gathered_body`).
:class:`BodyBuffer` holds it meanwhile: in memory up to :data:`SPOOL_AT` bytes, in a temporary
file beyond, and never past the server's cap, which is checked as each piece arrives.
A :class:`SpoolBudget` bounds the bytes every request's spool files hold at once, so that no
number of clients uploading at the same time can fill the disk.
"""

from __future__ import annotations

import io
import tempfile
import threading
from typing import IO

from tether.errors import ContentTooLarge

__all__ = ["SPOOL_AT", "BodyBuffer", "SpoolBudget", "SpoolFull"]

#: Body bytes held in memory; a longer body is spooled to a temporary file.
SPOOL_AT = 256 * 1024


class SpoolFull(ContentTooLarge):
    """413: the server's spool files are at :class:`SpoolBudget`'s limit. Temporary: other
    uploads end and free their share, so the answer carries ``Retry-After`` (RFC 9110 15.5.14:
    "If the condition is temporary, the server SHOULD generate a Retry-After")."""


class SpoolBudget:
    """The bytes of gathered request bodies on disk at once, over the whole server.

    Taken by the thread that gathers bodies, given back by the worker that closes a body after
    its response (or at once for a body never handed over), hence the lock. Only bodies past
    :data:`SPOOL_AT` touch it: a small request never takes the lock.
    """

    __slots__ = ("_lock", "limit", "used")

    def __init__(self, limit: int | None) -> None:
        #: Most bytes on disk at once (None: no limit, as in waitress).
        self.limit = limit
        #: Bytes the spool files hold now.
        self.used = 0
        self._lock = threading.Lock()

    def take(self, size: int) -> None:
        """Count ``size`` more bytes on disk; :class:`SpoolFull` (nothing counted) past the
        limit."""
        with self._lock:
            if self.limit is not None and self.used + size > self.limit:
                raise SpoolFull(
                    f"request bodies spooled to disk are at the server's limit of {self.limit} "
                    "bytes; try again later"
                )
            self.used += size

    def give(self, size: int) -> None:
        """``size`` bytes left the disk (a spool file closed)."""
        with self._lock:
            self.used -= size


class BodyBuffer:
    """The body of one request while the server gathers it (one thread at a time)."""

    __slots__ = ("budget", "cap", "chunks", "file", "held", "size")

    def __init__(self, cap: int | None, budget: SpoolBudget | None = None) -> None:
        #: Most bytes accepted (the server's body cap); the core checks ``max_body_size`` too.
        self.cap = cap
        #: The server's bound on bytes spooled at once, and this body's share of it.
        self.budget = budget
        self.held = 0
        self.chunks: list[bytes] = []
        #: The spool file once the body outgrew :data:`SPOOL_AT`.
        self.file: IO[bytes] | None = None
        self.size = 0

    def feed(self, data: bytes) -> None:
        """Add a piece of the body the core produced (raises ContentTooLarge past the cap)."""
        self.size += len(data)
        if self.cap is not None and self.size > self.cap:
            raise ContentTooLarge(f"the request body exceeds {self.cap} bytes")
        if self.file is not None:
            self._take(len(data))
            self.file.write(data)
            return
        self.chunks.append(data)
        if self.size > SPOOL_AT:
            self._take(self.size)
            # Page-cache writes: an event loop does not wait on the disk for these in practice.
            spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the server or discard()
            spool.writelines(self.chunks)
            self.chunks.clear()
            self.file = spool

    def _take(self, size: int) -> None:
        if self.budget is not None:
            self.budget.take(size)  # raises SpoolFull
            self.held += size

    def release(self) -> None:
        """The spool file handed over by :meth:`stream` was closed: give its share back.
        Safe to call twice."""
        held, self.held = self.held, 0
        if held and self.budget is not None:
            self.budget.give(held)

    def stream(self) -> IO[bytes]:
        """The complete body as a stream positioned at its start (hand-over to the app; call
        :meth:`release` once it is closed)."""
        spool = self.file
        if spool is not None:
            self.file = None
            spool.flush()
            spool.seek(0)
            return spool
        chunks = self.chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.chunks = []
        return io.BytesIO(data)

    def discard(self) -> None:
        """The request will not run: free the memory and the spool file."""
        self.chunks = []
        if self.file is not None:
            self.file.close()
            self.file = None
        self.release()
