"""One immutable object holding every size, count and time limit of a connection.

Each limit is enforced while reading, before memory is spent on the input that
breaks it. Times are in seconds; the core never reads a clock, callers pass
``now`` and the connection turns these durations into absolute deadlines.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits for one HTTP/1.1 (and, after an upgrade, WebSocket) connection.

    ``None`` means "no limit" only where the quantity is streamed, never
    buffered (the body size, the number of requests on a connection). Sizes
    are in bytes, times in seconds (of the monotonic clock the caller passes
    as ``now``).

    HTTP/1.1 request head:

    - ``max_request_line``: Longest request line, CRLF excluded (414 beyond).
    - ``max_header_line``: Longest single field line, CRLF excluded (431 beyond).
    - ``max_header_count``: Most field lines in a head (431 beyond).
    - ``max_head_size``: Largest whole head: request line, fields and the empty line (431
      beyond).

    HTTP/1.1 body:

    - ``max_body_size``: Largest request body, in bytes after de-chunking (413 beyond);
      ``None`` for no limit.
    - ``max_chunk_size_digits``: Most hex digits in a chunk size (more is refused even with
      leading zeros).
    - ``max_chunk_extension``: Longest chunk extension on one chunk line.
    - ``max_trailer_size``: Largest trailer section.
    - ``max_drain_size``: Largest unread request body the connection discards to keep the
      connection alive; a larger remainder (or an unknown-length one) closes the connection
      instead.

    HTTP/1.1 connection:

    - ``max_buffered_bytes``: Most bytes held for pipelined requests while a response is
      pending; a caller that feeds more than this without draining events gets a
      LocalProtocolError.
    - ``max_requests``: Requests served on one connection before it is closed; ``None`` for
      no limit.
    - ``head_timeout``: Seconds allowed for a whole request head, from its first byte (408
      beyond).
    - ``body_timeout``: Seconds a body may stall while the core is waiting for it (408 and
      close beyond, or a plain close once the response has started).
    - ``min_body_rate``: Least average rate of a request body, in bytes per second; 0 for no
      minimum. Once the body has started, the body deadline is also ``body_timeout`` seconds
      plus one second per ``min_body_rate`` bytes received since then (as Apache's
      mod_reqtimeout ``body=...,MinRate=...``), so a body trickled a byte at a time ends
      after about ``body_timeout`` seconds however often its bytes arrive.
    - ``keep_alive_timeout``: Seconds an idle keep-alive connection is kept (silent close
      beyond).

    WebSocket:

    - ``ws_max_frame_size``: Largest single frame payload (1009 beyond).
    - ``ws_max_message_size``: Largest message, after decompression (1009 beyond).
    - ``ws_close_timeout``: Seconds to wait for the peer's close frame after sending ours.
    - ``ws_ping_interval``: Seconds between pings sent by the core's timer; ``None`` to
      never ping.
    - ``ws_ping_timeout``: Seconds to wait for a pong before failing the connection (1011).
    - ``ws_write_high_water``: Bytes waiting to be sent above which the producer should
      pause.
    - ``ws_write_low_water``: Bytes waiting to be sent below which a paused producer may
      resume.
    """

    # -- HTTP/1.1 request head ------------------------------------------------------------------
    max_request_line: int = 8 * 1024
    max_header_line: int = 8 * 1024
    max_header_count: int = 100
    max_head_size: int = 64 * 1024

    # -- HTTP/1.1 body --------------------------------------------------------------------------
    max_body_size: int | None = None
    max_chunk_size_digits: int = 16
    max_chunk_extension: int = 1024
    max_trailer_size: int = 16 * 1024
    max_drain_size: int = 64 * 1024

    # -- HTTP/1.1 connection --------------------------------------------------------------------
    max_buffered_bytes: int = 256 * 1024
    max_requests: int | None = None
    head_timeout: float = 10.0
    body_timeout: float = 30.0
    min_body_rate: float = 0.0
    keep_alive_timeout: float = 5.0

    # -- WebSocket ------------------------------------------------------------------------------
    ws_max_frame_size: int = 16 * 1024 * 1024
    ws_max_message_size: int = 16 * 1024 * 1024
    ws_close_timeout: float = 10.0
    ws_ping_interval: float | None = None
    ws_ping_timeout: float = 20.0
    ws_write_high_water: int = 64 * 1024
    ws_write_low_water: int = 16 * 1024

    # Derived, not a setting: the longest head span (request line to the last field line,
    # CRLFs between them included) that cannot break the size limits above, so that the
    # reader checks a common head's sizes with one comparison.
    _small_head: int = dataclasses.field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None and value < 0:
                raise ValueError(f"Limits.{field.name} must not be negative, got {value!r}")
        if self.ws_write_low_water > self.ws_write_high_water:
            raise ValueError("Limits.ws_write_low_water must not exceed ws_write_high_water")
        small = min(self.max_head_size - 4, self.max_request_line, self.max_header_line)
        object.__setattr__(self, "_small_head", small)

    def replace(self, **changes: object) -> Limits:
        """Return a copy with the given fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


__all__ = ["Limits"]
