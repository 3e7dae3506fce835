"""The robustness probes of ``tether conform``: slow heads, idle connections, size limits.

A robustness limit broken is a warning, not a failure: the RFCs leave the numbers to servers.
The timeouts have no RFC level: what they quote is the sentence that allows closing. The status
a limit is refused with is the RFC's, though: 414 for a request-target (RFC 9112 3) and a 4xx
for header fields (RFC 9110 5.4) are MUSTs, and another answer fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tether_server.conform._probes import Result, Verdict, _refused
from tether_server.conform._wire import Target, exchange

GROUP = "robustness"
TIMEOUTS = "RFC 9112 9.5"
#: RFC 9112 9.5: what lets a server close an idle connection (a MAY, so no level is asked).
MAY_CLOSE = "A client, server, or proxy MAY close the transport connection at any time."
#: RFC 9112 8: what lets a server give up on an incomplete request, with a 408 first.
INCOMPLETE = (
    "A server that receives an incomplete request message, usually due to a canceled request or "
    "a triggered timeout exception, MAY send an error response prior to closing the connection."
)


def _result(
    id: str,
    title: str,
    rfc: str,
    verdict: Verdict,
    *,
    safe: str,
    observed: str,
    level: str = "",
    sentence: str = "",
) -> Result:
    """A robustness finding: no RFC level unless the RFC names the status to answer with."""
    return Result(id, GROUP, title, rfc, level, verdict, safe, observed, sentence=sentence)


def _request(target: Target, end: str = "\r\n") -> bytes:
    """A GET of the target's path: whole, or cut inside its head (``end``)."""
    host, path = target.authority.decode("latin-1"), target.path.decode("latin-1")
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{end}".encode("latin-1")


def _head_timeout(target: Target, wait: float) -> Result:
    obs = exchange(target, [_request(target, "X-Slow: ")], expect=(b"GET",), wait=wait)
    if obs.closed:
        how = "408 and close" if obs.statuses[:1] == [408] else obs.summary()
        verdict, observed = Verdict.PASS, f"{how} after {obs.closed_after:.1f} s"
    else:
        verdict, observed = Verdict.WARN, f"still open after {wait:.1f} s: no head timeout"
    safe = "close a connection whose request head does not complete in time (slow loris), ideally with 408"
    title = "an incomplete request head (slow loris)"
    return _result(
        "head-timeout",
        title,
        "RFC 9112 8",
        verdict,
        safe=safe,
        observed=observed,
        sentence=INCOMPLETE,
    )


def _idle_timeout(target: Target, wait: float) -> Result:
    obs = exchange(target, [_request(target)], expect=(b"GET", b"GET"), wait=wait)
    if not obs.statuses:
        verdict, observed = Verdict.ERROR, obs.summary()
    elif obs.closed:
        verdict, observed = Verdict.PASS, f"closed {obs.closed_after:.1f} s after the request"
    else:
        verdict, observed = Verdict.WARN, f"still open after {wait:.1f} s"
    safe = "close an idle keep-alive connection after a while"
    return _result(
        "idle-timeout",
        "an idle keep-alive connection",
        TIMEOUTS,
        verdict,
        safe=safe,
        observed=observed,
        sentence=MAY_CLOSE,
    )


@dataclass(frozen=True)
class _Limit:
    """A size limit probe: what it sends, and the status the RFC asks for beyond the limit."""

    id: str
    title: str
    rfc: str
    sentence: str
    #: The precise status.
    status: int
    #: Whether a refusal with this status meets the RFC's MUST.
    meets: Callable[[int], bool]
    #: The request, with its long element ``n`` bytes long.
    make: Callable[[int], bytes]


def _limit(target: Target, probe: _Limit) -> Result:
    id, title, status, make = probe.id, probe.title, probe.status, probe.make
    found = []
    for size in (8 << 10, 16 << 10, 64 << 10, 1 << 20):
        obs = exchange(target, [make(size)], expect=(b"GET",))
        found.append((size, obs))
        if (obs.statuses and _refused(obs.statuses[0])) or (obs.closed and not obs.statuses):
            break
    size, obs = found[-1]
    refused_at = obs.statuses[0] if obs.statuses else None
    safe = f"refuse an oversized element with {status}"
    if refused_at is not None and _refused(refused_at):
        # Where the limit lies is the server's choice; the status it refuses with is the RFC's.
        verdict = Verdict.PASS if probe.meets(refused_at) else Verdict.FAIL
        if verdict is Verdict.PASS and refused_at != status:
            safe += f" (any 4xx is allowed; {status} is the precise status)"
        observed = (
            f"{refused_at} at {size // 1024} KiB (accepted {found[-2][0] // 1024} KiB)"
            if len(found) > 1
            else f"{refused_at} at {size // 1024} KiB"
        )
    elif obs.closed and refused_at is None:
        verdict, observed = Verdict.INFO, f"closed without an answer at {size // 1024} KiB"
    else:
        verdict, observed = Verdict.WARN, f"accepted {size // 1024} KiB ({obs.summary()})"
    return _result(
        id,
        title,
        probe.rfc,
        verdict,
        safe=safe,
        observed=observed,
        level="MUST",
        sentence=probe.sentence,
    )


def robustness(target: Target, slow_wait: float) -> Iterator[Result]:
    """Timeouts (run side by side, each bounded by ``slow_wait``) and size limits."""
    with ThreadPoolExecutor(2) as pool:
        timeouts = [
            pool.submit(probe, target, slow_wait) for probe in (_head_timeout, _idle_timeout)
        ]
        yield from _limits(target)
        for timeout in timeouts:
            yield timeout.result()


def _limits(target: Target) -> Iterator[Result]:
    host = target.authority.decode("latin-1")
    path = target.path.decode("latin-1")
    yield _limit(
        target,
        _Limit(
            "limit-414",
            "a long request line",
            "RFC 9112 3",
            "A server that receives a request-target longer than any URI it wishes to parse MUST "
            "respond with a 414 (URI Too Long) status code (see Section 15.5.15 of [HTTP]).",
            414,
            lambda status: status == 414,
            lambda n: f"GET {path}?{'a' * n} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode(),
        ),
    )
    yield _limit(
        target,
        _Limit(
            "limit-431",
            "a long header field",
            "RFC 9110 5.4",
            "A server that receives a request header field line, field value, or set of fields "
            "larger than it wishes to process MUST respond with an appropriate 4xx (Client Error) "
            "status code.",
            431,
            # Any 4xx meets the MUST; 431 is the precise one.
            lambda status: 400 <= status < 500,
            lambda n: _request(target, f"X-Big: {'a' * n}\r\n\r\n"),
        ),
    )
    obs = exchange(
        target,
        [f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000000000000\r\n\r\n".encode()],
        expect=(b"GET",),
    )
    if obs.statuses[:1] == [413]:
        verdict, observed = Verdict.PASS, "413"
    else:
        verdict, observed = Verdict.INFO, f"no body limit announced ({obs.summary()})"
    safe = "refuse a body over its limit with 413 before reading it"
    title = "a 1 TB Content-Length"
    yield _result("limit-413", title, "RFC 9110 15.5.14", verdict, safe=safe, observed=observed)
