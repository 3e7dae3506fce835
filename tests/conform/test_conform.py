"""``tether conform`` against both Tether servers (every MUST passes) and against servers
broken on purpose (each flaw is caught by the probe written for it)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conform.broken_servers import BrokenServer, Flaws
from tests.conftest import ROOT
from tests.processes import RUNNING, SOURCES, free_port, read_until, reaped, spawn
from tether.conformance import load_vectors
from tether_server.conform import (
    SMUGGLING,
    Target,
    Verdict,
    run,
    smuggle_probe,
    target_from_url,
    vector_probe,
)

PROBES = {probe.id: probe for probe in SMUGGLING}


def conform(*args: str) -> subprocess.CompletedProcess[str]:
    """``tether conform`` in a subprocess, on this checkout's packages."""
    path = ":".join(map(str, [*SOURCES, ROOT]))
    return subprocess.run(
        [sys.executable, "-m", "tether_asyncio", "conform", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={"PYTHONPATH": path},
        cwd=ROOT,
    )


@pytest.fixture(params=["asyncio", "threaded"])
def tether_url(request: pytest.FixtureRequest) -> Iterator[str]:
    port = free_port()
    common = ["--port", str(port), "--timeout-request-head", "2", "--timeout-keep-alive", "2"]
    if request.param == "asyncio":
        proc = spawn("tether_asyncio", ROOT, "serve", "tests.conform.apps:asgi_echo", *common)
        ready = RUNNING
    else:
        proc = spawn("tether_threaded", ROOT, "tests.conform.apps:wsgi_echo", *common)
        ready = RUNNING
    with reaped(proc):
        read_until(proc, ready)
        yield f"http://127.0.0.1:{port}/"


def test_tether_servers_pass_every_must(tether_url: str, tmp_path: Path) -> None:
    junit = tmp_path / "conform.xml"
    out = conform(tether_url, "--json", "--junit", str(junit), "--slow-wait", "5")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr
    report = json.loads(out.stdout)
    verdicts = {r["id"]: r["verdict"] for r in report["results"]}
    assert len(report["results"]) >= 240
    assert [i for i, v in verdicts.items() if v in ("fail", "error", "lenient", "warn")] == []
    # The timeouts were measured, not assumed: both close the slow head and the idle connection.
    assert verdicts["head-timeout"] == verdicts["idle-timeout"] == "pass"
    suite = ET.parse(junit).getroot()
    assert suite.get("failures") == "0" and int(suite.get("tests", "0")) == len(report["results"])


def _probe(server: BrokenServer, probe_id: str) -> tuple[Verdict, bool | None, str]:
    result = smuggle_probe(
        Target("127.0.0.1", server.port, b"127.0.0.1", b"/", 1.0), PROBES[probe_id]
    )
    return result.verdict, result.second_processed, result.observed


@pytest.fixture
def servers() -> Iterator[dict[str, BrokenServer]]:
    made = {
        "base": BrokenServer(Flaws()),
        "bare_lf": BrokenServer(Flaws(bare_lf=True)),
        "cl_over_te": BrokenServer(Flaws(cl_over_te=True)),
        "no_head_timeout": BrokenServer(Flaws(no_head_timeout=True)),
        "framing_error_200": BrokenServer(Flaws(framing_error_200=True)),
    }
    yield made
    for server in made.values():
        server.close()


def test_bare_lf_is_reported_lenient(servers: dict[str, BrokenServer]) -> None:
    # RFC 9112 2.2 lets a recipient take a bare LF: lenient, not failed.
    assert _probe(servers["bare_lf"], "bare-lf-head")[0] is Verdict.LENIENT
    assert _probe(servers["base"], "bare-lf-head")[0] is Verdict.PASS


@pytest.mark.parametrize("probe_id", ["cl-te", "te-cl"])
def test_content_length_over_transfer_encoding_fails(
    servers: dict[str, BrokenServer], probe_id: str
) -> None:
    verdict, _, observed = _probe(servers["cl_over_te"], probe_id)
    assert verdict is Verdict.FAIL, observed
    assert _probe(servers["base"], probe_id)[0] is Verdict.PASS


def test_cl_te_desync_shows_the_second_request(servers: dict[str, BrokenServer]) -> None:
    # Framed by Content-Length: 4, "0\r\n\r" is the body and the rest a new (broken) request.
    _, second, observed = _probe(servers["cl_over_te"], "cl-te")
    assert second is True, observed
    assert "second request was answered" in observed


@pytest.mark.parametrize(
    "probe_id", ["cl-list-differ", "cl-sign", "cl-dup-differ", "te-te-1", "te-te-2"]
)
def test_framing_error_answered_200_fails(servers: dict[str, BrokenServer], probe_id: str) -> None:
    verdict, _, observed = _probe(servers["framing_error_200"], probe_id)
    assert verdict is Verdict.FAIL, observed
    assert _probe(servers["base"], probe_id)[0] is Verdict.PASS


def test_vector_verdict_does_not_hang_on_how_the_answer_was_read(
    servers: dict[str, BrokenServer],
) -> None:
    # This server answers a bad chunk size with 200 and then closes. Whether its close came in
    # the same read as the 200 used to flip the verdict between "fail" and "info" (about 1 run
    # in 10); the probe now lingers for the close, so twenty runs give one verdict.
    vector = next(v for v in load_vectors() if v.id == "ch-size-0x")
    target = Target("127.0.0.1", servers["framing_error_200"].port, b"127.0.0.1", b"/", 1.0)
    verdicts = {vector_probe(target, vector).verdict for _ in range(20)}
    assert verdicts == {Verdict.INFO}


def test_missing_head_timeout_is_caught_within_the_bound(servers: dict[str, BrokenServer]) -> None:
    target = target_from_url(f"http://127.0.0.1:{servers['no_head_timeout'].port}/", 1.0)
    started = time.monotonic()
    results = {r.id: r for r in run(target, ["robustness"], slow_wait=2.0)}
    assert time.monotonic() - started < 30
    assert results["head-timeout"].verdict is Verdict.WARN
    assert "no head timeout" in results["head-timeout"].observed
    base = target_from_url(f"http://127.0.0.1:{servers['base'].port}/", 1.0)
    assert {r.id: r for r in run(base, ["robustness"], slow_wait=2.0)}[
        "head-timeout"
    ].verdict is Verdict.PASS


def test_command_fails_on_a_must_and_says_why(
    servers: dict[str, BrokenServer], tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{servers['framing_error_200'].port}/"
    out = conform(url, "--only", "smuggling", "--timeout", "1", "--junit", str(tmp_path / "j.xml"))
    assert out.returncode == 1, out.stdout
    assert "FAIL    cl-list-differ: Content-Length: 5, 6  [RFC 9112 6.3 MUST]" in out.stdout
    assert "result: FAILED" in out.stdout
    cases = ET.parse(tmp_path / "j.xml").getroot().findall("testcase")
    failed = [case.get("name", "") for case in cases if case.find("failure") is not None]
    assert any(name.startswith("cl-list-differ:") for name in failed)


def test_unreachable_server_is_a_usage_error() -> None:
    out = conform(f"http://127.0.0.1:{free_port()}/")
    assert out.returncode == 2
    assert "cannot connect" in out.stderr and "Traceback" not in out.stderr
