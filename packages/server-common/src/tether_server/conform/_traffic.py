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

When a probe fails, the first failing stream (for keep-alive, the requests sent on
that connection up to the failing one) is reduced by :mod:`._shrink`, replayed on
fresh connections, and reported as a counterexample: the exact bytes and cut points.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from tether_server.conform._probes import Counterexample, Result, Verdict
from tether_server.conform._shrink import SECONDS, Budget, Case, Failure, shrink
from tether_server.conform._streams import (
    KNOWN_METHODS,
    Answer,
    Batch,
    Link,
    Planned,
    generate,
    send_batch,
    split_points,
)
from tether_server.conform._wire import Target

GROUP = "traffic"
#: How many requests go in one write at most, when pipelining.
BATCH = 6


#: The RFC sentence behind each probe, quoted exactly. Keep-alive (RFC 9112 9.3): a server that
#: mis-frames a body leaves bytes that are read as the next request.
SENTENCES = {
    "traffic-keep-alive": (
        "A server MUST read the entire request message body or close the connection after "
        "sending its response; otherwise, the remaining data on a persistent connection would "
        "be misinterpreted as the next request."
    ),
    # RFC 9112 9.3.2.
    "traffic-pipelined": (
        "A server MAY process a sequence of pipelined requests in parallel if they all have safe "
        "methods (Section 9.2.1 of [HTTP]), but it MUST send the corresponding responses in the "
        "same order that the requests were received."
    ),
}


def _result(
    id: str,
    title: str,
    rfc: str,
    verdict: Verdict,
    *,
    safe: str,
    observed: str,
    counterexample: Counterexample | None = None,
) -> Result:
    return Result(
        id,
        GROUP,
        title,
        rfc,
        "MUST",
        verdict,
        safe,
        observed,
        counterexample=counterexample,
        # A skipped probe asked nothing of the server: no sentence to quote.
        sentence="" if verdict is Verdict.SKIP else SENTENCES[id],
    )


# ---- what counts as a failure -----------------------------------------------------------------


def judge_alone(item: Planned, batch: Batch) -> Failure | None:
    """How one request sent alone failed: not answered well, or refused with 400."""
    if not batch.answers:
        return Failure("unanswered", batch.problem or "no response")
    if batch.answers[0].status == 400 and item.request.method in KNOWN_METHODS:
        return Failure("refused", "400")
    return None


def judge_pipelined(
    items: Sequence[Planned], batch: Batch, expected: Sequence[Answer]
) -> Failure | None:
    """How requests written together failed, against the answers each got alone."""
    got = batch.answers
    if len(got) < len(items) and not (got and batch.announced_close):
        # RFC 9112 9.3.2: a server may close after any response it marked "close"; a
        # client retries what was not answered, so only an unannounced end fails.
        return Failure("unanswered", f"{len(items) - len(got)} not answered ({batch.problem})")
    # A request answered 400 only when others follow it was judged by bytes not its own.
    refused = [
        f"{item.describe()!r}: 400 pipelined, {want.status} alone"
        for item, answer, want in zip(items, got, expected)
        if answer.status == 400 and want.status != 400
    ]
    if refused:
        return Failure(
            "refused",
            f"{len(refused)} valid request(s) refused only when pipelined: "
            + "; ".join(refused[:2]),
        )
    want = list(expected[: len(got)])
    if got != want and sorted(got, key=repr) == sorted(want, key=repr):
        return Failure("order", "the answers came back out of order")
    return None


class Replayer:
    """Sends a :class:`Case` on fresh connections and judges it as the probes do."""

    def __init__(self, target: Target, alone: dict[bytes, Answer] | None = None) -> None:
        self.target = target
        #: The answer each request (by its bytes) got alone, for judging pipelined order.
        self.alone = alone or {}

    def __call__(self, case: Case) -> Failure | None:
        try:
            if not case.pipelined:
                return self._one_at_a_time(case.items, case.cuts)
            expected = []
            for item in case.items:
                if item.wire not in self.alone and self._one_at_a_time([item], [()]):
                    return None  # fails alone too: not what is being reduced
                answer = self.alone.get(item.wire)
                if answer is None:
                    return None
                expected.append(answer)
            link = Link(self.target)
            try:
                sock, conn = link.ready()
                batch = send_batch(self.target, sock, conn, case.items, case.splits())
            finally:
                link.close()
            return judge_pipelined(case.items, batch, expected)
        except OSError:
            return None  # cannot connect: no verdict on this stream

    def _one_at_a_time(
        self, items: Sequence[Planned], cuts: Sequence[tuple[int, ...]]
    ) -> Failure | None:
        link = Link(self.target)
        try:
            for item, splits in zip(items, cuts):
                sock, conn = link.ready()
                batch = send_batch(self.target, sock, conn, [item], splits)
                if failure := judge_alone(item, batch):
                    return failure
                self.alone.setdefault(item.wire, batch.answers[0])
        finally:
            link.close()
        return None


# ---- the probes ---------------------------------------------------------------------------------


def traffic(
    target: Target, count: int = 50, seed: int = 0, shrink_seconds: float = SECONDS
) -> Iterator[Result]:
    """The keep-alive and pipelined traffic probes, on ``count`` requests drawn with ``seed``;
    a failure is reduced for at most ``shrink_seconds``."""
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
    first: tuple[Case, Failure] | None = None
    on_link: list[tuple[Planned, tuple[int, ...]]] = []  # sent on the current connection
    link = Link(target)
    try:
        for item in planned:
            opened = link.opened
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
            if link.opened != opened:
                on_link = []
            # Every other request is cut at random points (seeded): a server must not take a
            # request that arrives in pieces for a whole one, or refuse it.
            splits = split_points(rng, len(item.wire)) if len(alone) % 2 else []
            batch = send_batch(target, sock, conn, [item], splits)
            on_link.append((item, tuple(splits)))
            answer = batch.answers[0] if batch.answers else None
            alone.append(answer)
            how = f" (sent in pieces at {splits})" if splits else ""
            if answer is None:
                link.close()
            if failure := judge_alone(item, batch):
                broken.append(f"{item.describe()!r}{how}: {failure.detail}")
                if first is None:
                    sent = tuple(p for p, _ in on_link), tuple(c for _, c in on_link)
                    first = Case(*sent, pipelined=False), failure
            elif answer is not None and answer.status == 400:
                unknown_400.append(f"{item.describe()!r}{how}: 400")
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
    counterexample = None
    if broken:
        verdict = Verdict.FAIL
        observed += f"; {len(broken)} not answered well: " + "; ".join(broken[:3])
    if first is not None:
        counterexample = shrink(*first, Replayer(target), Budget(seconds=shrink_seconds))
    yield _result(
        "traffic-keep-alive",
        title,
        "RFC 9112 9.3",
        verdict,
        safe=safe,
        observed=observed,
        counterexample=counterexample,
    )
    yield _pipelined(target, planned, alone, seed, shrink_seconds)


def _pipelined(
    target: Target,
    planned: Sequence[Planned],
    alone: Sequence[Answer | None],
    seed: int,
    shrink_seconds: float,
) -> Result:
    # HTTP/1.1 requests only: an HTTP/1.0 one without keep-alive ends the connection.
    chosen = [
        (p, a) for p, a in zip(planned, alone) if p.request.http_version == b"1.1" and a is not None
    ]
    title = f"{len(chosen)} generated HTTP/1.1 requests pipelined, up to {BATCH} per write (seed {seed})"
    safe = "answer pipelined requests in the order received, one response each"
    failures: list[str] = []
    first: tuple[Case, Failure] | None = None
    differs = False  # answers that vary from those the same requests got alone
    link = Link(target)
    pending = list(chosen)
    try:
        while pending:
            group = pending[:BATCH]
            items = [p for p, _ in group]
            expected = [a for _, a in group if a is not None]
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
            start = len(chosen) - len(pending) + 1
            batch = send_batch(target, sock, conn, items)
            failure = judge_pipelined(items, batch, expected)
            answered = len(batch.answers)
            del pending[: len(group) if failure else answered]
            if answered < len(group):
                link.close()
            if failure is None:
                differs |= batch.answers != expected[:answered]
                continue
            failures.append(f"requests {start}-{start + len(group) - 1}: {failure.detail}")
            if first is None:
                first = Case(tuple(items), ((),) * len(items), pipelined=True), failure
    finally:
        link.close()
    observed = f"{len(chosen)} requests on {link.opened} connection(s)"
    counterexample = None
    if first is not None:
        verdict = Verdict.FAIL
        observed += ": " + "; ".join(failures[:3])
        known = {p.wire: a for p, a in chosen if a is not None}
        replay = Replayer(target, known)
        counterexample = shrink(*first, replay, Budget(seconds=shrink_seconds))
    elif differs:
        verdict = Verdict.INFO
        observed += "; the answers differ from those to the same requests sent alone, so their order cannot be checked"
    else:
        verdict = Verdict.PASS
        observed += ": each answered as when sent alone, in order"
    return _result(
        "traffic-pipelined",
        title,
        "RFC 9112 9.3.2",
        verdict,
        safe=safe,
        observed=observed,
        counterexample=counterexample,
    )
