"""The reports of ``tether conform``: a terminal summary, JSON, and JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict

from tether_server.conform._probes import Result, Verdict

_MARK = {
    Verdict.PASS: "ok  ",
    Verdict.FAIL: "FAIL",
    Verdict.WARN: "warn",
    Verdict.LENIENT: "lenient",
    Verdict.INFO: "info",
    Verdict.ERROR: "ERROR",
    Verdict.SKIP: "skip",
}


def counts(results: Sequence[Result]) -> Counter[str]:
    """How many results of each verdict."""
    return Counter(result.verdict.value for result in results)


def text(url: str, version: str, results: Sequence[Result], *, verbose: bool = False) -> str:
    """A report for a person at a terminal: problems in full, passes counted per group."""
    lines = [f"tether conform {url}  (vectors {version})", ""]
    groups: dict[str, list[Result]] = {}
    for result in results:
        groups.setdefault(result.group, []).append(result)
    for group, members in groups.items():
        tally = counts(members)
        summary = ", ".join(f"{n} {verdict}" for verdict, n in sorted(tally.items()))
        lines.append(f"== {group}: {summary}")
        for result in members:
            if result.verdict is Verdict.PASS and not verbose:
                continue
            level = f" {result.level}" if result.level else ""
            lines.append(
                f"  {_MARK[result.verdict]:7} {result.id}: {result.title}  [{result.rfc}{level}]"
            )
            if result.sentence:
                lines.append(f'          the RFC: "{result.sentence}"')
            lines.append(f"          safe: {result.safe}")
            lines.append(f"          this server: {result.observed}")
            if result.counterexample is not None:
                first, *rest = result.counterexample.lines()
                lines.append(f"          counterexample: {first}")
                lines += [f"            {line}" for line in rest]
        lines.append("")
    tally = counts(results)
    failed = tally.get("fail", 0) + tally.get("error", 0)
    lines.append(
        f"{len(results)} probes: {tally.get('pass', 0)} passed, {tally.get('fail', 0)} failed (MUST), "
        f"{tally.get('warn', 0)} warnings, {tally.get('lenient', 0)} lenient (MAY), "
        f"{tally.get('info', 0)} info, {tally.get('error', 0)} errors, {tally.get('skip', 0)} skipped"
    )
    lines.append("result: " + ("FAILED" if failed else "passed every MUST"))
    return "\n".join(lines) + "\n"


def to_json(url: str, version: str, results: Sequence[Result]) -> str:
    """Every result as JSON, with the totals."""
    return json.dumps(
        {
            "url": url,
            "vectors_version": version,
            "totals": dict(counts(results)),
            "results": [
                dict(
                    asdict(r),
                    verdict=r.verdict.value,
                    counterexample=r.counterexample and r.counterexample.as_json(),
                )
                for r in results
            ],
        },
        indent=1,
    )


def junit(url: str, results: Sequence[Result]) -> bytes:
    """JUnit XML: one test case per probe; a MUST broken is a failure, the rest are passes
    (with a ``system-out`` note for warnings and leniencies)."""
    suite = ET.Element("testsuite", name=f"tether conform {url}", tests=str(len(results)))
    failures = errors = 0
    for result in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"conform.{result.group}",
            name=f"{result.id}: {result.title}",
        )
        message = (
            f"[{result.rfc} {result.level}] safe: {result.safe}; this server: {result.observed}"
        )
        if result.sentence:
            message += f'; the RFC: "{result.sentence}"'
        if result.verdict is Verdict.FAIL:
            failures += 1
            failure = ET.SubElement(
                case, "failure", message=message, type=result.level or "robustness"
            )
            if result.counterexample is not None:
                failure.text = "\n".join(result.counterexample.lines())
        elif result.verdict is Verdict.ERROR:
            errors += 1
            ET.SubElement(case, "error", message=message)
        elif result.verdict is Verdict.SKIP:
            ET.SubElement(case, "skipped", message=result.observed)
        elif result.verdict is not Verdict.PASS:
            ET.SubElement(case, "system-out").text = f"{result.verdict.value}: {message}"
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    out: bytes = ET.tostring(suite, encoding="utf-8", xml_declaration=True)
    return out
