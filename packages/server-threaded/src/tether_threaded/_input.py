"""``wsgi.input``: the request body, gathered whole by the loop before the application runs.

A worker thread must never wait on a client: a body trickled at a byte a second would hold it
for the whole upload, and ``--threads`` such clients would stop the server. So the loop reads
the body (de-chunked by the core) into a :class:`BodyBuffer`, in memory up to
:data:`SPOOL_AT` bytes and in an anonymous temporary file beyond it, bounded by the core's
body-size limit, and the application gets a complete, seekable stream with ``CONTENT_LENGTH``
set (waitress does the same; Django, Bottle and Falcon read only ``CONTENT_LENGTH``).
"""

from __future__ import annotations

import io
import tempfile
from typing import IO

from tether.errors import ContentTooLarge

#: Body bytes held in memory; a longer body is spooled to a temporary file.
SPOOL_AT = 256 * 1024


class ClientDisconnected(OSError):
    """The client went away, broke the protocol or timed out while the application was using
    the connection. Raised by response writes."""


class BodyBuffer:
    """The body of one request while the loop gathers it (loop thread, or the worker that
    pumps pipelined requests; always under the connection's lock)."""

    __slots__ = ("cap", "chunks", "file", "size")

    def __init__(self, cap: int) -> None:
        #: Most bytes accepted (``Config.body_cap``); the core checks ``max_body_size`` too.
        self.cap = cap
        self.chunks: list[bytes] = []
        #: The spool file once the body outgrew :data:`SPOOL_AT`.
        self.file: IO[bytes] | None = None
        self.size = 0

    def feed(self, data: bytes) -> None:
        """Add a piece of the body the core produced (raises ContentTooLarge past the cap)."""
        self.size += len(data)
        if self.size > self.cap:
            raise ContentTooLarge(f"the request body exceeds {self.cap} bytes")
        if self.file is not None:
            self.file.write(data)
            return
        self.chunks.append(data)
        if self.size > SPOOL_AT:
            # Page-cache writes: the loop does not wait on the disk for these in practice.
            spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the exchange or discard()
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


__all__ = ["SPOOL_AT", "BodyBuffer", "ClientDisconnected"]
