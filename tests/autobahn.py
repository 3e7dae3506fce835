"""Run the Autobahn WebSocket test suite against any server, bounded in time.

The cases are driven by ``kosoku`` (pinned to 0.1.0 in requirements-dev.txt),
which runs Autobahn's own case files against ``ws://host:port``. The server
under test must echo every text and binary message it receives (Autobahn's
"fuzzingclient" mode opens one connection per case on the URL's root).

In a test (the repository root must be importable: ``python -m pytest`` puts
it on ``sys.path``; otherwise insert it, as ``tests/websocket/conftest.py``
does)::

    from tests.autobahn import run_autobahn

    def test_autobahn(echo_server_address):           # e.g. "127.0.0.1:54321"
        report = run_autobahn(echo_server_address, timeout=180, concurrency=2)
        assert report.ok, report.summary()             # lists every failed or missing case
        # report.outcomes: one CaseOutcome per case (case_id, behavior, behavior_close, ...)
        # report.exceptions(): the cases that passed as NON-STRICT / INFORMATIONAL

From an async test whose server runs on the same event loop, ``await
run_autobahn_async(...)`` instead (the sync form runs its own loop in a
worker thread and would block a loop running in the calling thread).

From a shell::

    python tests/autobahn.py 127.0.0.1:9001 [-i '1.*' ...] [-x '12.*' ...] [-t 180] [-p 2]

A case passes when its behavior is OK, NON-STRICT or INFORMATIONAL and its
closing behavior is OK or INFORMATIONAL. The run is split into groups (one
per section, and one per subsection for the long compression sections 12 and
13) so that a deadline loses only the groups it cuts: each group is bounded by
the time left, and groups that could not finish are reported as ``timed_out``
and make ``report.ok`` false.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: The suite's groups, in order. Sections 12 and 13 (permessage-deflate, 1000
#: messages per case) are split by subsection.
DEFAULT_GROUPS: tuple[str, ...] = (
    "1.*",
    "2.*",
    "3.*",
    "4.*",
    "5.*",
    "6.*",
    "7.*",
    "9.*",
    "10.*",
    *(f"12.{i}.*" for i in range(1, 6)),
    *(f"13.{i}.*" for i in range(1, 8)),
)

#: Message-exchange verdicts that count as passing.
ACCEPTED_BEHAVIOR = frozenset({"OK", "NON-STRICT", "INFORMATIONAL"})
#: Closing-handshake verdicts that count as passing.
ACCEPTED_CLOSE = frozenset({"OK", "INFORMATIONAL"})


@dataclass(frozen=True)
class CaseOutcome:
    """The verdict of one Autobahn case."""

    case_id: str
    #: "OK", "NON-STRICT", "INFORMATIONAL", "FAILED", "UNIMPLEMENTED" or "ERROR".
    behavior: str
    #: "OK", "INFORMATIONAL", "FAILED", "FAILED BY CLIENT", "UNCLEAN" or "WRONG CODE".
    behavior_close: str
    duration_ms: int
    description: str
    result: str
    result_close: str
    #: The close code the server sent, if any.
    remote_close_code: int | None

    @property
    def passed(self) -> bool:
        """Whether both verdicts are acceptable."""
        return self.behavior in ACCEPTED_BEHAVIOR and self.behavior_close in ACCEPTED_CLOSE

    @property
    def strict_ok(self) -> bool:
        """Whether both verdicts are exactly OK."""
        return self.behavior == "OK" and self.behavior_close == "OK"

    def line(self) -> str:
        """One human-readable line."""
        return (
            f"{self.case_id:<9} {self.behavior:<13} {self.behavior_close:<16} "
            f"{self.duration_ms:>6} ms  {self.result} / {self.result_close}"
        )


@dataclass
class AutobahnReport:
    """Every case's outcome, the groups that ran out of time, and the wall time."""

    outcomes: list[CaseOutcome] = field(default_factory=list)
    #: Groups (case globs) that did not finish before the deadline.
    timed_out: list[str] = field(default_factory=list)
    #: Groups that kosoku could not run at all, with the error text.
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def failures(self) -> list[CaseOutcome]:
        """Cases that did not pass."""
        return [o for o in self.outcomes if not o.passed]

    @property
    def ok(self) -> bool:
        """Every group ran to the end and every case passed."""
        return bool(self.outcomes) and not (self.failures or self.timed_out or self.errors)

    def exceptions(self) -> list[CaseOutcome]:
        """Passing cases whose verdict is not plain OK (NON-STRICT, INFORMATIONAL)."""
        return [o for o in self.outcomes if o.passed and not o.strict_ok]

    def summary(self) -> str:
        """A report: counts, failed cases, time-outs, errors and the non-OK passes."""
        counts: dict[tuple[str, str], int] = {}
        for o in self.outcomes:
            key = (o.behavior, o.behavior_close)
            counts[key] = counts.get(key, 0) + 1
        lines = [
            f"Autobahn: {len(self.outcomes)} cases in {self.elapsed:.1f} s, "
            f"{len(self.failures)} failed, {len(self.timed_out)} groups timed out, "
            f"{len(self.errors)} groups in error",
            "verdicts: " + ", ".join(f"{b}/{c}={n}" for (b, c), n in sorted(counts.items())),
        ]
        if self.failures:
            lines.append("FAILED:")
            lines += ["  " + o.line() for o in self.failures]
        if self.timed_out:
            lines.append("TIMED OUT: " + " ".join(self.timed_out))
        if self.errors:
            lines.append("ERRORS:")
            lines += ["  " + e for e in self.errors]
        passes = self.exceptions()
        if passes:
            lines.append("passed, not strictly OK:")
            lines += ["  " + o.line() for o in passes]
        return "\n".join(lines)


def _outcome(result: Any) -> CaseOutcome:
    return CaseOutcome(
        case_id=result.case_id,
        behavior=result.behavior.value,
        behavior_close=result.behavior_close.value,
        duration_ms=int(result.duration),
        description=result.description,
        result=result.result,
        result_close=result.result_close,
        remote_close_code=result.remote_close_code,
    )


def _groups(cases: Sequence[str] | None) -> list[str]:
    return list(DEFAULT_GROUPS if cases is None else cases)


async def run_autobahn_async(
    address: str,
    *,
    cases: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    timeout: float = 180.0,
    concurrency: int = 2,
) -> AutobahnReport:
    """Run the cases against ``address`` (``host:port`` or a ``ws://`` URL) within ``timeout`` s.

    ``cases`` are case ids or globs, each run as one group (default:
    :data:`DEFAULT_GROUPS`, the whole suite); ``exclude`` removes ids or globs
    from every group. ``concurrency`` is how many cases run at once.
    """
    from kosoku import FailureError, run_fuzzingclient

    url = address if "://" in address else f"ws://{address}"
    report = AutobahnReport()
    start = time.monotonic()
    deadline = start + timeout
    groups = _groups(cases)
    for index, group in enumerate(groups):
        left = deadline - time.monotonic()
        if left <= 0:
            report.timed_out += groups[index:]
            break
        try:
            results = await asyncio.wait_for(
                run_fuzzingclient(url, [group], list(exclude) or None, concurrency=concurrency),
                left,
            )
        except FailureError as failure:
            results = failure.results
        except asyncio.TimeoutError:
            report.timed_out += groups[index:]
            break
        except Exception as exc:  # kosoku could not run the group (e.g. server unreachable)
            report.errors.append(f"{group}: {type(exc).__name__}: {exc}")
            continue
        report.outcomes += [_outcome(r) for r in results]
    report.elapsed = time.monotonic() - start
    return report


def run_autobahn(
    address: str,
    *,
    cases: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    timeout: float = 180.0,
    concurrency: int = 2,
) -> AutobahnReport:
    """Blocking form of :func:`run_autobahn_async` (runs its own event loop in a thread)."""
    box: list[AutobahnReport | BaseException] = []

    def work() -> None:
        try:
            box.append(
                asyncio.run(
                    run_autobahn_async(
                        address,
                        cases=cases,
                        exclude=exclude,
                        timeout=timeout,
                        concurrency=concurrency,
                    )
                )
            )
        except BaseException as exc:
            box.append(exc)

    thread = threading.Thread(target=work, name="autobahn", daemon=True)
    thread.start()
    # The run bounds itself; the extra margin only covers a cancelled group winding down.
    thread.join(timeout + 30.0)
    if not box:
        report = AutobahnReport(timed_out=["<harness did not return>"], elapsed=timeout + 30.0)
        return report
    outcome = box[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the suite against a server and print the summary."""
    parser = argparse.ArgumentParser(description="Run Autobahn (kosoku) against a WebSocket server")
    parser.add_argument("address", help="host:port or ws:// URL of an echo server")
    parser.add_argument("-i", "--include", action="append", help="case id or glob (repeatable)")
    parser.add_argument("-x", "--exclude", action="append", default=[], help="case id or glob")
    parser.add_argument("-t", "--timeout", type=float, default=180.0, help="seconds for the run")
    parser.add_argument("-p", "--concurrency", type=int, default=2)
    args = parser.parse_args(argv)
    report = run_autobahn(
        args.address,
        cases=args.include,
        exclude=args.exclude,
        timeout=args.timeout,
        concurrency=args.concurrency,
    )
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
