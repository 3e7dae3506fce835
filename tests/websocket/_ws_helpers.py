"""Small helpers shared by the WebSocket tests (no mocks: real connections, real bytes)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence

from hypothesis import HealthCheck, settings

from tether import websocket as ws

#: Hypothesis settings for every property test here, applied per test (a global profile
#: would change other areas' tests). TETHER_WS_EXAMPLES raises the count for a deep run.
PROPERTY = settings(
    max_examples=int(os.environ.get("TETHER_WS_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

_counter = itertools.count()


def fixed_masks(size: int) -> bytes:
    """A deterministic mask source for client connections in tests (never random)."""
    n = next(_counter)
    return bytes((n * 7 + i * 13 + 1) & 0xFF for i in range(size))


def feed(conn: ws.Connection, chunks: Iterable[bytes]) -> list[ws.Event]:
    """Feed chunks one by one, collecting every event."""
    events: list[ws.Event] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        events.extend(conn.events())
    return events


def split(data: bytes, points: Sequence[int]) -> list[bytes]:
    """Cut ``data`` at the given offsets (any order, duplicates allowed)."""
    cuts = sorted({p for p in points if 0 < p < len(data)})
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def merge(events: Sequence[ws.Event]) -> list[ws.Event]:
    """Join streamed message pieces into whole messages, so streams compare to wholes."""
    out: list[ws.Event] = []
    parts: list[ws.Text | ws.Binary] = []
    for event in events:
        if isinstance(event, (ws.Text, ws.Binary)):
            parts.append(event)
            if event.fin:
                if isinstance(event, ws.Text):
                    out.append(ws.Text("".join(p.data for p in parts)))  # type: ignore[misc]
                else:
                    out.append(ws.Binary(b"".join(p.data for p in parts)))  # type: ignore[misc]
                parts = []
        else:
            out.append(event)
    return out


def read_frame(data: bytes) -> tuple[int, bytes, bytes]:
    """Decode the first frame of ``data``: (first byte, unmasked payload, rest)."""
    b0, b1 = data[0], data[1]
    n, pos = b1 & 0x7F, 2
    if n == 126:
        n, pos = int.from_bytes(data[2:4], "big"), 4
    elif n == 127:
        n, pos = int.from_bytes(data[2:10], "big"), 10
    if b1 & 0x80:
        key = data[pos : pos + 4]
        pos += 4
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(data[pos : pos + n]))
    else:
        payload = data[pos : pos + n]
    return b0, payload, data[pos + n :]
