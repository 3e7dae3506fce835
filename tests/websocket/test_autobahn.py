"""The Autobahn test suite (via kosoku) against examples/ws_echo_server.py, bounded in time.

The echo server runs in its own process (its threads do not share our GIL
with kosoku's case logic) on an ephemeral port of 127.0.0.1.

Every case of every section runs, compression (12.x, 13.x) included: all
517, about 4 minutes on 2 quiet cores.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.autobahn import run_autobahn

ROOT = Path(__file__).resolve().parents[2]

#: Seconds for the whole run (the harness stops at this bound and reports what it cut).
BUDGET = 900.0

pytestmark = [pytest.mark.slow, pytest.mark.timeout(BUDGET + 60)]


@pytest.fixture(scope="module")
def echo_server() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "ws_echo_server.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on "), line
        yield line.split()[-1]
    finally:
        proc.terminate()
        proc.wait(10)


def test_autobahn_suite(echo_server: str) -> None:
    """Every case of every section is OK, NON-STRICT or INFORMATIONAL."""
    report = run_autobahn(echo_server, timeout=BUDGET, concurrency=4)
    print(report.summary())
    assert report.ok, report.summary()


def test_harness_reports_a_broken_server() -> None:
    """The harness can fail: a server that is not there fails every case it was given."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    report = run_autobahn(f"127.0.0.1:{port}", cases=["1.1.1", "2.1"], timeout=30)
    assert not report.ok
    assert [o.case_id for o in report.failures] == ["1.1.1", "2.1"]
    assert "FAILED" in report.summary()
