"""Generated request streams on the wire, for the ``traffic`` probes of ``tether conform``.

Requests are drawn by Hypothesis from :func:`tether.strategies.requests` with a fixed seed,
aimed at the server under test, written whole, cut into pieces, or several in one write,
and their answers read by the core's ``ClientConnection``.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tether import http1
from tether.errors import ProtocolError
from tether_server.conform._wire import Target

if TYPE_CHECKING:
    from tether.strategies import GeneratedRequest

#: Methods RFC 9110 defines (and PATCH): a 400 to one of them refuses a valid request.
#: Any other token is a valid method too, but a server that does not know it SHOULD
#: answer 501 (RFC 9110 9.1), so a 400 there is a warning.
KNOWN_METHODS = frozenset(
    (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"TRACE", b"PATCH")
)


@dataclass(frozen=True)
class Planned:
    """One generated request: the events that tell ``ClientConnection`` about it, and its bytes."""

    request: http1.Request
    body: bytes
    trailers: list[tuple[bytes, bytes]]
    wire: bytes
    #: What it was made from (for the shrinker's simpler variants).
    gen: GeneratedRequest

    def register(self, conn: http1.ClientConnection) -> None:
        """Let ``conn`` expect this request's response (HEAD has no body, 1.0 may close)."""
        conn.send(self.request)
        if self.body:
            conn.send(http1.Data(self.body))
        conn.send(http1.EndOfMessage(self.trailers))

    def describe(self) -> str:
        """The request line, for a report."""
        return self.wire.split(b"\r\n", 1)[0][:80].decode("latin-1")


@dataclass(frozen=True)
class Answer:
    """One response as read: its status and body."""

    status: int
    body: bytes


@dataclass
class Batch:
    """What came back for requests written together on one connection."""

    answers: list[Answer] = field(default_factory=list)
    #: Why the answers stopped short: the core's parse error, "closed", or "timed out".
    problem: str | None = None
    #: The server closed after a response that said it would (Connection: close).
    announced_close: bool = False


def generate(target: Target, count: int, seed: int) -> list[Planned] | str:
    """``count`` requests drawn by ``tether.strategies.requests()`` with ``seed``.

    A string (why) instead when Hypothesis is not installed.
    """
    try:
        from hypothesis import HealthCheck, Phase, given, settings
        from hypothesis import seed as with_seed

        from tether.strategies import requests
    except ImportError:
        return "skipped: needs hypothesis (pip install hypothesis)"
    drawn: list[GeneratedRequest] = []

    # Hypothesis's own loop does the drawing: it varies sizes and shapes from the
    # smallest example up, which .example() does not, and it takes a seed.
    @with_seed(seed)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(requests())
    def draw(request: GeneratedRequest) -> None:
        if len(drawn) < count:
            drawn.append(request)

    draw()
    return [aimed(gen, target.authority) for gen in drawn]


def aimed(gen: GeneratedRequest, authority: bytes) -> Planned:
    """``gen`` with the server's authority for Host (and an absolute target's), as it is sent."""
    headers = tuple(
        (name, authority if name.lower() == b"host" else value) for name, value in gen.headers
    )
    target = gen.target
    if target.startswith(b"http://example.com"):
        target = b"http://" + authority + target[len(b"http://example.com") :]
    gen = dataclasses.replace(gen, headers=headers, target=target)
    request = http1.Request(gen.method, gen.target, list(gen.wire_headers()), gen.version)
    trailers = list(gen.trailers) if gen.chunks is not None else []
    return Planned(request, gen.body, trailers, gen.to_bytes(), gen)


#: The pause between the pieces of a split request, so that they reach the server as separate
#: segments (a probe's pacing, not synchronisation: the server is not waited for).
PIECE_GAP = 0.005


def split_points(rng: random.Random, size: int) -> list[int]:
    """One or two offsets inside a request of ``size`` bytes, where it is cut into pieces."""
    if size < 3:
        return []
    return sorted(rng.sample(range(1, size), min(size - 1, rng.choice((1, 2)))))


def send_batch(
    target: Target,
    sock: socket.socket,
    conn: http1.ClientConnection,
    batch: Sequence[Planned],
    splits: Sequence[int] = (),
) -> Batch:
    """Write ``batch`` on ``sock`` (in one write, or cut at ``splits``); read one response per
    request."""
    out = Batch()
    for planned in batch:
        planned.register(conn)
    wire = b"".join(p.wire for p in batch)
    try:
        if not splits:
            sock.sendall(wire)
        else:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            edges = [0, *splits, len(wire)]
            for start, end in itertools.pairwise(edges):
                try:
                    sock.sendall(wire[start:end])
                except OSError:
                    break  # it answered (and closed) before the last piece: read what it said
                if end < len(wire):
                    time.sleep(PIECE_GAP)
    except OSError as exc:
        out.problem = f"the server stopped reading ({exc})"
        return out
    deadline = time.monotonic() + target.timeout
    status: int | None = None
    body = bytearray()
    while len(out.answers) < len(batch):
        try:
            event = conn.next_event()
        except ProtocolError as exc:
            out.problem = f"unreadable response: {exc.message}"
            return out
        if isinstance(event, http1.Response):
            status, body = event.status_code, bytearray()
        elif isinstance(event, http1.Data):
            body += event.data
        elif isinstance(event, http1.EndOfMessage):
            assert status is not None
            out.answers.append(Answer(status, bytes(body)))
        elif isinstance(event, http1.ConnectionClosed) or event is http1.PAUSED:
            out.problem = "the server closed the connection"
            out.announced_close = bool(out.answers) and not conn.keep_alive
            return out
        elif event is http1.NEED_DATA:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                sock.settimeout(left)
                data = sock.recv(65536)
            except TimeoutError:
                out.problem = f"no response within {target.timeout:g} s"
                return out
            except OSError:
                data = b""
            conn.receive_data(data)
    return out


class Link:
    """A keep-alive connection to the target, reopened when the server (or HTTP/1.0) ends it."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.sock: socket.socket | None = None
        self.conn = http1.ClientConnection()
        self.opened = 0

    def ready(self) -> tuple[socket.socket, http1.ClientConnection]:
        """The open connection, or a new one (``OSError`` when the server cannot be reached)."""
        if self.sock is None or not self.conn.keep_alive:
            self.close()
            self.sock = socket.create_connection(
                (self.target.host, self.target.port), timeout=self.target.timeout
            )
            self.conn = http1.ClientConnection()
            self.opened += 1
        return self.sock, self.conn

    def close(self) -> None:
        """Close the connection (the next ``ready`` opens another)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
