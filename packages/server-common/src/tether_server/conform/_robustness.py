"""The robustness probes of ``tether conform``: slow heads, idle connections, size limits.

A robustness limit broken is a warning, not a failure: the RFCs leave the numbers to servers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from tether_server.conform._probes import Result, Verdict, _refused
from tether_server.conform._wire import Target, exchange

# ---- robustness ------------------------------------------------------------------------------------


def _head_timeout(target: Target, wait: float) -> Result:
    fill = {"host": target.authority.decode("latin-1"), "path": target.path.decode("latin-1")}
    partial = "GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Slow: ".format(**fill).encode("latin-1")
    obs = exchange(target, [partial], expect=(b"GET",), wait=wait)
    safe = "close a connection whose request head does not complete in time (slow loris), ideally with 408"
    if obs.closed:
        how = "408 and close" if obs.statuses[:1] == [408] else obs.summary()
        return Result(
            "head-timeout",
            "robustness",
            "an incomplete request head (slow loris)",
            "RFC 9112 9.5",
            "",
            Verdict.PASS,
            safe,
            f"{how} after {obs.closed_after:.1f} s",
        )
    return Result(
        "head-timeout",
        "robustness",
        "an incomplete request head (slow loris)",
        "RFC 9112 9.5",
        "",
        Verdict.WARN,
        safe,
        f"still open after {wait:.1f} s: no head timeout",
    )


def _idle_timeout(target: Target, wait: float) -> Result:
    fill = {"host": target.authority.decode("latin-1"), "path": target.path.decode("latin-1")}
    request = "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".format(**fill).encode("latin-1")
    obs = exchange(target, [request], expect=(b"GET", b"GET"), wait=wait)
    safe = "close an idle keep-alive connection after a while"
    title = "an idle keep-alive connection"
    if not obs.statuses:
        return Result(
            "idle-timeout",
            "robustness",
            title,
            "RFC 9112 9.5",
            "",
            Verdict.ERROR,
            safe,
            obs.summary(),
        )
    if obs.closed:
        return Result(
            "idle-timeout",
            "robustness",
            title,
            "RFC 9112 9.5",
            "",
            Verdict.PASS,
            safe,
            f"closed {obs.closed_after:.1f} s after the request",
        )
    return Result(
        "idle-timeout",
        "robustness",
        title,
        "RFC 9112 9.5",
        "",
        Verdict.WARN,
        safe,
        f"still open after {wait:.1f} s",
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
    return Result(
        id,
        "robustness",
        title,
        "RFC 9110 15.5",
        "",
        verdict,
        f"refuse an oversized element with {status}",
        observed,
    )


def robustness(target: Target, slow_wait: float) -> Iterator[Result]:
    """Timeouts (run side by side, each bounded by ``slow_wait``) and size limits."""
    results: dict[str, Result] = {}
    threads = [
        threading.Thread(
            target=lambda: results.__setitem__("head", _head_timeout(target, slow_wait))
        ),
        threading.Thread(
            target=lambda: results.__setitem__("idle", _idle_timeout(target, slow_wait))
        ),
    ]
    for thread in threads:
        thread.start()
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
        lambda n: f"GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Big: {'a' * n}\r\n\r\n".encode(),
    )
    obs = exchange(
        target,
        [f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000000000000\r\n\r\n".encode()],
        expect=(b"GET",),
    )
    if obs.statuses[:1] == [413]:
        yield Result(
            "limit-413",
            "robustness",
            "a 1 TB Content-Length",
            "RFC 9110 15.5.14",
            "",
            Verdict.PASS,
            "refuse a body over its limit with 413 before reading it",
            "413",
        )
    else:
        yield Result(
            "limit-413",
            "robustness",
            "a 1 TB Content-Length",
            "RFC 9110 15.5.14",
            "",
            Verdict.INFO,
            "refuse a body over its limit with 413 before reading it",
            f"no body limit announced ({obs.summary()})",
        )
    for thread in threads:
        thread.join()
    yield results["head"]
    yield results["idle"]
