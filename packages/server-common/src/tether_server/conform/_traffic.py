"""The ``traffic`` probes of ``tether conform``: varied valid requests from ``tether.strategies``.

Hypothesis draws ``count`` valid requests (a fixed ``seed``, so a run can be
repeated): methods (also unknown tokens), origin- and absolute-form targets,
field values with obs-text and optional whitespace, bodies framed by
Content-Length or chunked with extensions and trailers, HTTP/1.0 and 1.1.
The Host (and an absolute target's authority) is the URL's, so that an
application's host checks do not get in the way.

- **traffic-keep-alive**: each request alone on a keep-alive connection (every
  other one cut into two or three pieces at seeded random points, written apart);
  each must get exactly one response that the core's ``ClientConnection`` reads,
  and none may be refused with 400 (every request is valid).
- **traffic-pipelined**: the HTTP/1.1 requests again, several per write; the
  responses must come back one per request, in order (RFC 9112 9.3.2). Order
  is checked against the answers each request got alone: a permutation of
  them is a failure; answers that vary anyway make the order uncheckable.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tether.errors import ProtocolError
from tether.http1 import (
    NEED_DATA,
    PAUSED,
    ClientConnection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Request,
    Response,
)
from tether_server.conform._probes import Result, Verdict
from tether_server.conform._wire import Target

if TYPE_CHECKING:
    from tether.strategies import GeneratedRequest

GROUP = "traffic"
#: How many requests go in one write at most, when pipelining.
BATCH = 6


@dataclass(frozen=True)
class Planned:
    """One generated request: the events that tell ``ClientConnection`` about it, and its bytes."""

    request: Request
    body: bytes
    trailers: list[tuple[bytes, bytes]]
    wire: bytes

    def register(self, conn: ClientConnection) -> None:
        """Let ``conn`` expect this request's response (HEAD has no body, 1.0 may close)."""
        conn.send(self.request)
        if self.body:
            conn.send(Data(self.body))
        conn.send(EndOfMessage(self.trailers))

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
    return [_planned(gen, target.authority) for gen in drawn]


def _planned(gen: GeneratedRequest, authority: bytes) -> Planned:
    headers = tuple(
        (name, authority if name.lower() == b"host" else value) for name, value in gen.headers
    )
    target = gen.target
    if target.startswith(b"http://example.com"):
        target = b"http://" + authority + target[len(b"http://example.com") :]
    gen = dataclasses.replace(gen, headers=headers, target=target)
    request = Request(gen.method, gen.target, list(gen.wire_headers()), gen.version)
    trailers = list(gen.trailers) if gen.chunks is not None else []
    return Planned(request, gen.body, trailers, gen.to_bytes())


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
    conn: ClientConnection,
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
        if isinstance(event, Response):
            status, body = event.status_code, bytearray()
        elif isinstance(event, Data):
            body += event.data
        elif isinstance(event, EndOfMessage):
            assert status is not None
            out.answers.append(Answer(status, bytes(body)))
        elif isinstance(event, ConnectionClosed) or event is PAUSED:
            out.problem = "the server closed the connection"
            out.announced_close = bool(out.answers) and not conn.keep_alive
            return out
        elif event is NEED_DATA:
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


class _Link:
    """A keep-alive connection to the target, reopened when the server (or HTTP/1.0) ends it."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.sock: socket.socket | None = None
        self.conn = ClientConnection()
        self.opened = 0

    def ready(self) -> tuple[socket.socket, ClientConnection]:
        if self.sock is None or not self.conn.keep_alive:
            self.close()
            self.sock = socket.create_connection(
                (self.target.host, self.target.port), timeout=self.target.timeout
            )
            self.conn = ClientConnection()
            self.opened += 1
        return self.sock, self.conn

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _result(id: str, title: str, rfc: str, verdict: Verdict, *, safe: str, observed: str) -> Result:
    return Result(id, GROUP, title, rfc, "MUST", verdict, safe, observed)


#: Methods RFC 9110 defines (and PATCH): a 400 to one of them refuses a valid request.
#: Any other token is a valid method too, but a server that does not know it SHOULD
#: answer 501 (RFC 9110 9.1), so a 400 there is a warning.
KNOWN_METHODS = frozenset(
    (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"TRACE", b"PATCH")
)


def traffic(target: Target, count: int = 50, seed: int = 0) -> Iterator[Result]:
    """The keep-alive and pipelined traffic probes, on ``count`` requests drawn with ``seed``."""
    planned = generate(target, count, seed)
    if isinstance(planned, str):
        for id in ("traffic-keep-alive", "traffic-pipelined"):
            yield _result(
                id, "generated valid requests", "RFC 9112", Verdict.SKIP, safe="", observed=planned
            )
        return
    title = (
        f"{len(planned)} generated valid requests, one at a time, every other one split at "
        f"random points (seed {seed})"
    )
    rng = random.Random(seed)
    safe = "answer each valid request with exactly one well-formed response, never 400 (501 for an unknown method)"
    alone: list[Answer | None] = []
    broken: list[str] = []  # no response, or one the core cannot read, or 400 to a known method
    unknown_400: list[str] = []
    link = _Link(target)
    try:
        for item in planned:
            try:
                sock, conn = link.ready()
            except OSError as exc:
                yield _result(
                    "traffic-keep-alive",
                    title,
                    "RFC 9112 9.3",
                    Verdict.ERROR,
                    safe=safe,
                    observed=f"cannot connect: {exc}",
                )
                return
            # Every other request is cut at random points (seeded): a server must not take a
            # request that arrives in pieces for a whole one, or refuse it.
            splits = split_points(rng, len(item.wire)) if len(alone) % 2 else []
            batch = send_batch(target, sock, conn, [item], splits)
            answer = batch.answers[0] if batch.answers else None
            alone.append(answer)
            how = f" (sent in pieces at {splits})" if splits else ""
            if answer is None:
                broken.append(f"{item.describe()!r}{how}: {batch.problem}")
                link.close()
            elif answer.status == 400:
                known = item.request.method in KNOWN_METHODS
                (broken if known else unknown_400).append(f"{item.describe()!r}{how}: 400")
    finally:
        link.close()
    statuses = sorted({a.status for a in alone if a is not None})
    observed = (
        f"{sum(a is not None for a in alone)} answered (statuses {', '.join(map(str, statuses))}) "
        f"on {link.opened} connection(s)"
    )
    verdict = Verdict.PASS
    if unknown_400:
        verdict = Verdict.WARN
        observed += (
            f"; {len(unknown_400)} with an unknown method refused with 400, not 501 "
            f"(RFC 9110 9.1 SHOULD): " + "; ".join(unknown_400[:2])
        )
    if broken:
        verdict = Verdict.FAIL
        observed += f"; {len(broken)} not answered well: " + "; ".join(broken[:3])
    yield _result(
        "traffic-keep-alive", title, "RFC 9112 9.3", verdict, safe=safe, observed=observed
    )
    yield _pipelined(target, planned, alone, seed)


def _pipelined(
    target: Target, planned: Sequence[Planned], alone: Sequence[Answer | None], seed: int
) -> Result:
    # HTTP/1.1 requests only: an HTTP/1.0 one without keep-alive ends the connection.
    chosen = [
        (p, a) for p, a in zip(planned, alone) if p.request.http_version == b"1.1" and a is not None
    ]
    title = f"{len(chosen)} generated HTTP/1.1 requests pipelined, up to {BATCH} per write (seed {seed})"
    safe = "answer pipelined requests in the order received, one response each"
    got: list[Answer] = []
    problems: list[str] = []
    link = _Link(target)
    pending = [p for p, _ in chosen]
    try:
        while pending:
            group = pending[:BATCH]
            try:
                sock, conn = link.ready()
            except OSError as exc:
                return _result(
                    "traffic-pipelined",
                    title,
                    "RFC 9112 9.3.2",
                    Verdict.ERROR,
                    safe=safe,
                    observed=f"cannot connect: {exc}",
                )
            batch = send_batch(target, sock, conn, group)
            got += batch.answers
            del pending[: len(batch.answers)]
            if len(batch.answers) == len(group):
                continue
            link.close()
            if batch.answers and batch.announced_close:
                # RFC 9112 9.3.2: a server may close after any response it marked "close";
                # a client retries what was not answered, as this one does.
                continue
            done = len(got) + 1
            problems.append(
                f"requests {done}-{done + len(group) - len(batch.answers) - 1}: not answered ({batch.problem})"
            )
            skipped = len(group) - len(batch.answers)
            got += [Answer(0, b"")] * skipped
            del pending[:skipped]
    finally:
        link.close()
    expected = [a for _, a in chosen if a is not None]
    verdict = Verdict.FAIL if problems else Verdict.PASS
    observed = f"{len(chosen)} requests on {link.opened} connection(s)"
    if problems:
        observed += ": " + "; ".join(problems[:3])
    elif got != expected:
        # A request answered 400 only when others follow it was judged by bytes not its own.
        refused = [
            f"{p.describe()!r}: 400 pipelined, {a.status} alone"
            for (p, a), g in zip(chosen, got)
            if a is not None and g.status == 400 and a.status != 400
        ]
        if refused:
            verdict = Verdict.FAIL
            observed += (
                f"; {len(refused)} valid request(s) refused only when pipelined: "
                + "; ".join(refused[:2])
            )
        elif sorted(got, key=repr) == sorted(expected, key=repr):
            verdict = Verdict.FAIL
            observed += "; the answers came back out of order"
        else:
            verdict = Verdict.INFO
            observed += "; the answers differ from those to the same requests sent alone, so their order cannot be checked"
    else:
        observed += ": each answered as when sent alone, in order"
    return _result(
        "traffic-pipelined", title, "RFC 9112 9.3.2", verdict, safe=safe, observed=observed
    )
