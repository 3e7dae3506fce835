"""A request body gathered whole before a WSGI application runs, for any WSGI server.

A server that will not let a worker wait on a slow client (waitress's way, and
``tether-threaded``'s default) reads the whole body before the application runs and hands it
over as a complete, seekable ``wsgi.input`` (see :func:`tether.serving_wsgi.gathered_body`).
:class:`BodyBuffer` holds it meanwhile: in memory up to :data:`SPOOL_AT` bytes, in a temporary
file beyond, and never past the server's cap, which is checked as each piece arrives.
"""

from __future__ import annotations

import io
import tempfile
from typing import IO

from tether.errors import ContentTooLarge

__all__ = ["SPOOL_AT", "BodyBuffer"]

#: Body bytes held in memory; a longer body is spooled to a temporary file.
SPOOL_AT = 256 * 1024


class BodyBuffer:
    """The body of one request while the server gathers it (one thread at a time)."""

    __slots__ = ("cap", "chunks", "file", "size")

    def __init__(self, cap: int | None) -> None:
        #: Most bytes accepted (the server's body cap); the core checks ``max_body_size`` too.
        self.cap = cap
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
            self.file.write(data)
            return
        self.chunks.append(data)
        if self.size > SPOOL_AT:
            # Page-cache writes: an event loop does not wait on the disk for these in practice.
            spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the server or discard()
            spool.writelines(self.chunks)
            self.chunks.clear()
            self.file = spool

    def stream(self) -> IO[bytes]:
        """The complete body as a stream positioned at its start (hand-over to the app)."""
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
