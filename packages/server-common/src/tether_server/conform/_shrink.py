"""Reducing a failing request stream of the ``traffic`` probes to a small counterexample.

A deterministic, greedy reducer in the manner of delta debugging: from the stream that
failed, it tries smaller ones and keeps any that still fails *the same way* (so that it
does not slide from one bug to another), until none of its candidates does or its bound
(attempts and seconds) is spent. Candidates, in order:

1. fewer requests: halves, then quarters, ... then single requests left out;
2. fewer cut points: all of them dropped, then one at a time;
3. simpler requests, each still valid: without the fields other than Host, without
   optional whitespace, with a shorter or empty body, in one chunk or by Content-Length,
   without trailers or chunk extensions, to ``/`` or a shorter path, as ``GET``.

Each candidate is strictly smaller (fewer requests, then fewer bytes, then fewer cuts), so
the loop ends. Hypothesis's own shrinker would need many more replays than a probe that
talks to a live server over sockets can afford; this one needs a few dozen at most.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tether_server.conform._probes import Counterexample
from tether_server.conform._streams import Planned, aimed

if TYPE_CHECKING:
    from tether.strategies import GeneratedRequest

#: The default bounds of one reduction: replays, and seconds.
ATTEMPTS = 60
SECONDS = 10.0


@dataclass(frozen=True)
class Case:
    """A request stream as the probes send it, and the failure it is meant to show."""

    items: tuple[Planned, ...]
    #: For each request, the offsets in its bytes where it is cut into separate writes.
    cuts: tuple[tuple[int, ...], ...]
    #: All in one write (cut where ``cuts`` say); else each request waits for its answer.
    pipelined: bool

    def size(self) -> tuple[int, int, int]:
        """What the reducer makes smaller: requests, then bytes, then cuts."""
        return (
            len(self.items),
            sum(len(item.wire) for item in self.items),
            sum(map(len, self.cuts)),
        )

    def splits(self) -> list[int]:
        """The cuts as offsets into the whole stream (for a pipelined write)."""
        out: list[int] = []
        start = 0
        for item, cuts in zip(self.items, self.cuts):
            out += [start + cut for cut in cuts]
            start += len(item.wire)
        return out

    def key(self) -> tuple[tuple[bytes, ...], tuple[tuple[int, ...], ...], bool]:
        """What identifies the stream on the wire (so that no stream is replayed twice)."""
        return tuple(item.wire for item in self.items), self.cuts, self.pipelined


@dataclass(frozen=True)
class Failure:
    """How a stream failed: a kind (compared while reducing) and the details (reported)."""

    kind: str
    detail: str


class Budget:
    """How many replays and seconds a reduction may spend."""

    def __init__(self, attempts: int = ATTEMPTS, seconds: float = SECONDS) -> None:
        self.left = attempts
        self.started = time.monotonic()
        self.deadline = self.started + seconds

    def spend(self) -> bool:
        """Take one replay, if any is left."""
        if self.left <= 0 or time.monotonic() >= self.deadline:
            return False
        self.left -= 1
        return True


def shrink(
    case: Case,
    found: Failure,
    replay: Callable[[Case], Failure | None],
    budget: Budget | None = None,
) -> Counterexample:
    """Reduce ``case``, which failed as ``found`` says, to a small stream that fails alike.

    ``replay`` sends a stream on fresh connections and says how it failed (None: it did
    not). The original is replayed first: a failure that does not come back is reported
    unreduced, as found.
    """
    budget = budget or Budget()
    attempts = 0

    def fails(candidate: Case) -> Failure | None:
        nonlocal attempts
        attempts += 1
        failure = replay(candidate)
        return failure if failure is not None and failure.kind == found.kind else None

    reproduced = fails(case) if budget.spend() else None
    best, failure = case, reproduced or found
    # Whether every candidate of the result was tried (else the bound stopped the reduction).
    complete = progress = reproduced is not None
    seen = {case.key()}
    while progress:
        progress = False
        for candidate in _candidates(best):
            if candidate.size() >= best.size() or candidate.key() in seen:
                continue
            seen.add(candidate.key())
            if not budget.spend():
                complete = False
                break
            if smaller := fails(candidate):
                best, failure, progress = candidate, smaller, True
                break
    return Counterexample(
        requests=tuple(item.wire for item in best.items),
        splits=best.cuts,
        pipelined=best.pipelined,
        failure=failure.detail,
        reproduced=reproduced is not None,
        reduced_from=len(case.items),
        attempts=attempts,
        seconds=round(time.monotonic() - budget.started, 2),
        complete=complete,
    )


def _candidates(case: Case) -> Iterator[Case]:
    n = len(case.items)
    size = n // 2
    while size >= 1:
        for start in range(0, n, size):
            keep = [i for i in range(n) if not start <= i < start + size]
            if keep:
                yield _only(case, keep)
        size //= 2
    if any(case.cuts):
        yield dataclasses.replace(case, cuts=((),) * n)
        for i, cuts in enumerate(case.cuts):
            for cut in cuts:
                yield _with(case, i, case.items[i], tuple(c for c in cuts if c != cut))
    for i, item in enumerate(case.items):
        authority = _authority(item)
        for gen in simpler(item.gen):
            yield _with(case, i, aimed(gen, authority), case.cuts[i])


def _only(case: Case, keep: list[int]) -> Case:
    return dataclasses.replace(
        case,
        items=tuple(case.items[i] for i in keep),
        cuts=tuple(case.cuts[i] for i in keep),
    )


def _with(case: Case, i: int, item: Planned, cuts: tuple[int, ...]) -> Case:
    """``case`` with request ``i`` replaced, its cuts kept inside its (maybe shorter) bytes."""
    cuts = tuple(cut for cut in cuts if cut < len(item.wire))
    return dataclasses.replace(
        case,
        items=(*case.items[:i], item, *case.items[i + 1 :]),
        cuts=(*case.cuts[:i], cuts, *case.cuts[i + 1 :]),
    )


def _authority(item: Planned) -> bytes:
    hosts = [value for name, value in item.gen.headers if name.lower() == b"host"]
    return hosts[0] if hosts else b""


def simpler(gen: GeneratedRequest) -> Iterator[GeneratedRequest]:
    """Valid requests a little simpler than ``gen``: one part dropped or shortened each."""
    replace = dataclasses.replace
    hosts = {i for i, (name, _) in enumerate(gen.headers) if name.lower() == b"host"}
    others = [i for i in range(len(gen.headers)) if i not in hosts]
    if len(others) > 1:
        yield _fields(gen, sorted(hosts))
    for drop in others:
        yield _fields(gen, [i for i in range(len(gen.headers)) if i != drop])
    if any(pad != (b"", b"") for pad in gen.padding):
        yield replace(gen, padding=())
    chunked = gen.chunks is not None
    if gen.body:
        yield replace(gen, body=b"", chunks=() if chunked else None, extensions=())
        half = gen.body[: len(gen.body) // 2]
        if chunked:
            first = next((ext for ext in gen.extensions if ext), b"")
            yield replace(gen, body=half, chunks=(len(half),), extensions=(first,))
        else:
            yield replace(gen, body=half)
    if chunked:
        yield replace(gen, chunks=None, extensions=(), trailers=())
        if len(gen.extensions) > 1:
            first = next((ext for ext in gen.extensions if ext), b"")
            yield replace(gen, chunks=(len(gen.body),), extensions=(first,))
        for i, ext in enumerate(gen.extensions):
            if ext:
                yield replace(gen, extensions=(*gen.extensions[:i], b"", *gen.extensions[i + 1 :]))
        for i in range(len(gen.trailers)):
            yield replace(gen, trailers=(*gen.trailers[:i], *gen.trailers[i + 1 :]))
    if gen.target != b"/":
        yield replace(gen, target=b"/")
        path = gen.target
        if path.startswith(b"http://"):  # absolute-form: its path, in origin-form
            path = b"/" + path[len(b"http://") :].partition(b"/")[2]
            yield replace(gen, target=path)
        if len(path) > 2:
            yield replace(gen, target=path[: len(path) // 2])
    if not gen.body and not chunked and gen.method != b"GET":
        yield replace(gen, method=b"GET")


def _fields(gen: GeneratedRequest, keep: list[int]) -> GeneratedRequest:
    """``gen`` with only the fields at ``keep`` (and their padding)."""
    count = len(gen.headers)
    pads = list(gen.padding) + [(b"", b"")] * (count + 1 - len(gen.padding))
    return dataclasses.replace(
        gen,
        headers=tuple(gen.headers[i] for i in keep),
        padding=(*(pads[i] for i in keep), *pads[count:]),
    )
