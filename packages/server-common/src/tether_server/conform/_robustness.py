"""The robustness probes of ``tether conform``: slow heads, idle connections, size limits.

A robustness limit broken is a warning, not a failure: the RFCs leave the numbers to servers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from tether_server.conform._probes import Result, Verdict, _refused
from tether_server.conform._wire import Target, exchange

GROUP = "robustness"
TIMEOUTS = "RFC 9112 9.5"


def _result(id: str, title: str, rfc: str, verdict: Verdict, *, safe: str, observed: str) -> Result:
    """A robustness finding: no RFC level (the numbers are the server's to choose)."""
    return Result(id, GROUP, title, rfc, "", verdict, safe, observed)


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
    return _result("head-timeout", title, TIMEOUTS, verdict, safe=safe, observed=observed)


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
    )


def _limit(
    target: Target, id: str, title: str, status: int, make: Callable[[int], bytes]
) -> Result:
    found = []
    for size in (8 << 10, 16 << 10, 64 << 10, 1 << 20):
        obs = exchange(target, [make(size)], expect=(b"GET",))
        found.append((size, obs))
        if (obs.statuses and _refused(obs.statuses[0])) or (obs.closed and not obs.statuses):
            break
    size, obs = found[-1]
    refused_at = obs.statuses[0] if obs.statuses else None
    if refused_at is not None and _refused(refused_at):
        verdict = Verdict.PASS if refused_at == status else Verdict.INFO
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
        "RFC 9110 15.5",
        verdict,
        safe=f"refuse an oversized element with {status}",
        observed=observed,
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
        "limit-414",
        "a long request line",
        414,
        lambda n: f"GET {path}?{'a' * n} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode(),
    )
    yield _limit(
        target,
        "limit-431",
        "a long header field",
        431,
        lambda n: _request(target, f"X-Big: {'a' * n}\r\n\r\n"),
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
