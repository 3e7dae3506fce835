"""Run the Autobahn WebSocket test suite against any server, bounded in time.

The cases are driven by ``kosoku`` (pinned to 0.1.0 in requirements-dev.txt),
which runs Autobahn's own case files against ``ws://host:port``. The server
under test must echo every text and binary message it receives (Autobahn's
"fuzzingclient" mode opens one connection per case on the URL's root).

In a test (the repository root must be importable: ``python -m pytest`` puts
it on ``sys.path``; otherwise insert it, as ``tests/websocket/conftest.py``
does)::

    from tests.autobahn import LARGE_DEFLATE_CASES, run_autobahn

    def test_autobahn(echo_server_address):           # e.g. "127.0.0.1:54321"
        report = run_autobahn(
            echo_server_address, exclude=LARGE_DEFLATE_CASES, timeout=180, concurrency=4
        )
        assert report.ok, report.summary()             # lists every failed or missing case
        # report.outcomes: one CaseOutcome per case (case_id, behavior, behavior_close, ...)
        # report.exceptions(): the cases that passed as NON-STRICT / INFORMATIONAL

From an async test whose server runs on the same event loop, ``await
run_autobahn_async(...)`` instead (the sync form blocks the calling thread).
kosoku runs in a child process (``python tests/autobahn.py --child``), so the
server under test keeps this interpreter's GIL to itself, and the child is
killed if it overruns the deadline; its results stream back one JSON line per
case, so a cut run still reports every case that finished.

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
import fnmatch
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
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

#: The 42 permessage-deflate cases a time-bounded run may leave out: 64 KiB and 128 KiB
#: messages, 1000 of each per case (cases .9, .10, .14-.18), in the subsections where zlib
#: itself is slow, 7-21 MB/s at level 1 on a 2-core CI machine: the image, PDF and Gutenberg
#: data (12.2, 12.3, 12.5) and the 9-bit windows (13.3, 13.5, 13.7). About 9 minutes of CPU
#: on both ends together; the smaller cases of the same subsections and the large cases of
#: the others exercise the same code. Pass as ``exclude=LARGE_DEFLATE_CASES``.
LARGE_DEFLATE_CASES: tuple[str, ...] = tuple(
    f"{subsection}.{case}"
    for subsection in ("12.2", "12.3", "12.5", "13.3", "13.5", "13.7")
    for case in (9, 10, 14, 15, 16, 17, 18)
)

#: A sample for a run that another one covers in full: sections 1 to 10 whole (framing, UTF-8,
#: closing, limits), and the first case of 12.1, 12.2 and of every 13.x subsection (each
#: permessage-deflate negotiation variant): seconds against the whole suite's minutes.
SAMPLE_GROUPS: tuple[str, ...] = (
    *(g for g in DEFAULT_GROUPS if not g.startswith(("12.", "13."))),
    "12.1.1",
    "12.2.1",
    *(f"13.{i}.1" for i in range(1, 8)),
)

#: For a second server over the same core: :data:`SAMPLE_GROUPS`, with every message size and
#: fragmentation of one subsection per compression section (12.1, 13.1) for the binding's
#: many-message path under permessage-deflate. The subsections left to one case differ only in
#: the payload's data and the negotiated parameters, which are the core's business.
SERVER_SAMPLE_GROUPS: tuple[str, ...] = tuple(
    {"12.1.1": "12.1.*", "13.1.1": "13.1.*"}.get(group, group) for group in SAMPLE_GROUPS
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


def _outcome(result: Any) -> dict[str, Any]:
    return {
        "case_id": result.case_id,
        "behavior": result.behavior.value,
        "behavior_close": result.behavior_close.value,
        "duration_ms": int(result.duration),
        "description": result.description,
        "result": result.result,
        "result_close": result.result_close,
        "remote_close_code": result.remote_close_code,
    }


def _groups(cases: Sequence[str] | None) -> list[str]:
    return list(DEFAULT_GROUPS if cases is None else cases)


async def _child(
    url: str, groups: list[str], exclude: list[str], timeout: float, concurrency: int
) -> None:
    # Runs in the child process: one JSON line per case, time-out or error, as they come,
    # so that the parent keeps every finished group even if it has to kill us.
    from kosoku import FailureError, run_fuzzingclient

    deadline = time.monotonic() + timeout

    def emit(item: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(item) + "\n")
        sys.stdout.flush()

    for index, group in enumerate(groups):
        left = deadline - time.monotonic()
        if left <= 0:
            for rest in groups[index:]:
                emit({"timed_out": rest})
            return
        try:
            results = await asyncio.wait_for(
                run_fuzzingclient(url, [group], exclude or None, concurrency=concurrency), left
            )
        except FailureError as failure:
            results = failure.results
        except asyncio.TimeoutError:
            for rest in groups[index:]:
                emit({"timed_out": rest})
            return
        except Exception as exc:  # kosoku could not run the group
            emit({"error": f"{group}: {type(exc).__name__}: {exc}"})
            continue
        for result in results:
            emit({"case": _outcome(result)})


def _command(
    address: str,
    cases: Sequence[str] | None,
    exclude: Sequence[str],
    timeout: float,
    concurrency: int,
) -> list[str]:
    url = address if "://" in address else f"ws://{address}"
    job = {
        "url": url,
        "groups": _groups(cases),
        "exclude": list(exclude),
        "timeout": timeout,
        "concurrency": concurrency,
    }
    return [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(job)]


def _report(output: str, groups: list[str], elapsed: float) -> AutobahnReport:
    report = AutobahnReport(elapsed=elapsed)
    for line in output.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if "case" in item:
            report.outcomes.append(CaseOutcome(**item["case"]))
        elif "timed_out" in item:
            report.timed_out.append(item["timed_out"])
        elif "error" in item:
            report.errors.append(item["error"])
    # Groups the child never reported on were cut by the parent's hard deadline.
    seen = {o.case_id for o in report.outcomes}
    reported = set(report.timed_out) | {e.split(":")[0] for e in report.errors}
    if not any('"done"' in line for line in output.splitlines()):
        for group in groups:
            if group not in reported and not any(fnmatch.fnmatchcase(c, group) for c in seen):
                report.timed_out.append(group)
    return report


# The child is killed if it overruns its own deadline by this much.
_MARGIN = 20.0


def run_autobahn(
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
    from every group. ``concurrency`` is how many cases run at once. kosoku
    runs in a child process, so a server under test in this process keeps
    its interpreter to itself.
    """
    command = _command(address, cases, exclude, timeout, concurrency)
    start = time.monotonic()
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as child:
        try:
            output, _ = child.communicate(timeout=timeout + _MARGIN)
        except subprocess.TimeoutExpired:
            child.kill()
            output, _ = child.communicate()
    return _report(output, _groups(cases), time.monotonic() - start)


async def run_autobahn_async(
    address: str,
    *,
    cases: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    timeout: float = 180.0,
    concurrency: int = 2,
) -> AutobahnReport:
    """:func:`run_autobahn` for a caller whose event loop must keep running (e.g. the server)."""
    command = _command(address, cases, exclude, timeout, concurrency)
    start = time.monotonic()
    child = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
    try:
        raw, _ = await asyncio.wait_for(child.communicate(), timeout + _MARGIN)
        output = raw.decode()
    except asyncio.TimeoutError:
        child.kill()
        raw, _ = await child.communicate()
        output = raw.decode()
    return _report(output, _groups(cases), time.monotonic() - start)


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
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        # Keep this directory off the path: kosoku's cases import their own "autobahn".
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
        job = json.loads(sys.argv[2])
        asyncio.run(
            _child(job["url"], job["groups"], job["exclude"], job["timeout"], job["concurrency"])
        )
        sys.stdout.write(json.dumps({"done": True}) + "\n")
        sys.stdout.flush()
        # Skip interpreter teardown: kosoku's native runtime can abort while it winds down.
        os._exit(0)
    sys.exit(main())
