"""Helpers that drive a ServerConnection the way a server does, for the core tests."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tether.http1 import (
    NEED_DATA,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Request,
    Response,
    ServerConnection,
)
from tether.limits import Limits


@dataclass
class Seen:
    """One request as the core reported it."""

    request: Request
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)


def serve(
    pieces: Iterable[bytes], limits: Limits | None = None, *, eof: bool = False
) -> tuple[list[Seen], ServerConnection]:
    """Feed ``pieces``, answer every request with an empty 200 (CONNECT: 501), return what was seen.

    Also checks the memory bound: whenever the core asks for data, what it
    holds is within the head/trailer/chunk-line limits.
    """
    conn = ServerConnection(limits)
    limits = conn.limits
    bound = max(limits.max_head_size, limits.max_trailer_size) + 4
    seen: list[Seen] = []
    body: list[bytes] = []

    def drain() -> bool:
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                assert conn.buffered_bytes <= bound
                return True
            if isinstance(event, Request):
                seen.append(Seen(event))
                body.clear()
            elif isinstance(event, Data):
                body.append(event.data)
            elif isinstance(event, EndOfMessage):
                seen[-1].body = b"".join(body)
                seen[-1].trailers = list(event.trailers)
                # A server that does not tunnel answers CONNECT 501 (a 2xx would open a tunnel).
                status = 501 if seen[-1].request.method == b"CONNECT" else 200
                conn.send(Response(status, [(b"content-length", b"0")]))
                conn.send(EndOfMessage())
                if not conn.start_next_cycle():
                    return False
            elif isinstance(event, ConnectionClosed):
                return False
            else:  # PAUSED cannot happen: every request is answered at once
                raise AssertionError(event)

    for piece in pieces:
        if piece:
            conn.receive_data(piece)
            if not drain():
                return seen, conn
    if eof:
        conn.receive_data(b"")
        drain()
    return seen, conn


def split(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """``data`` cut at the given offsets."""
    points = sorted({min(max(c, 0), len(data)) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]
