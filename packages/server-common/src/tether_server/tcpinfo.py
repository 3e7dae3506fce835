"""How much of what a server wrote its TCP peer has taken, from the kernel.

A server that waits on a slow client (see :mod:`tether.serving_pace`) needs to know how many
bytes the client took while it waited. What the server's own buffers show is a poor measure:
the kernel's send buffer (several megabytes once autotuned) sits between them and the client,
and a write waits until a third of it is free. Linux counts the bytes the peer acknowledged
(``tcpi_bytes_acked`` of ``TCP_INFO``, RFC 4898's ``tcpEStatsAppHCThruOctetsAcked``); the peer
acknowledges only what fits its receive window, which opens as its application reads.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import Any, Protocol

__all__ = ["acked_bytes", "reset_on_close"]

# struct tcp_info (linux/tcp.h): tcpi_bytes_acked is the u64 after 104 bytes of u8/u32 fields
# and the two u64 pacing rates; present since Linux 4.1 (older kernels return a shorter struct).
_BYTES_ACKED = 120
_TCP_INFO = getattr(socket, "TCP_INFO", None)


class _Socket(Protocol):
    def getsockopt(self, level: int, option: int, buflen: int, /) -> bytes: ...


def acked_bytes(sock: _Socket) -> int | None:
    """Bytes of this connection's output the peer has acknowledged, or None where the kernel
    does not say (not Linux, not TCP: a Unix socket, or a closed one)."""
    if _TCP_INFO is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _BYTES_ACKED + 8)
    except (OSError, ValueError):
        return None
    if len(info) < _BYTES_ACKED + 8:
        return None
    value: int = struct.unpack_from("=Q", info, _BYTES_ACKED)[0]
    return value


def reset_on_close(sock: Any) -> None:
    """Make closing ``sock`` reset the connection (``SO_LINGER`` 0) rather than leave the kernel
    sending what is queued: for a client given up on as too slow, whose queue (megabytes once
    autotuned) would otherwise stay in kernel memory until it reads it or TCP gives up."""
    # Already closed, or not a socket: nothing queued to drop.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)


_LINGER_ZERO = struct.pack("ii", 1, 0)
