"""The Autobahn test suite (via kosoku) against examples/ws_echo_server.py, bounded in time.

The echo server runs in its own process (its threads do not share our GIL
with kosoku's case logic) on an ephemeral port of 127.0.0.1.

This is the core with the plainest I/O around it, and a sample is enough: sections 1-10
whole and one case per permessage-deflate negotiation variant (``SAMPLE_GROUPS``, seconds).
The servers' runs over the same core add every message size and fragmentation of 12.1 and
13.1 (``SERVER_SAMPLE_GROUPS``; tests/server_asyncio, tests/server_threaded).
``TETHER_AUTOBAHN_FULL=1`` runs all 517 cases here and on the servers: about 4 minutes on 2
quiet cores for this one, most of it in zlib.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.autobahn import SAMPLE_GROUPS, run_autobahn

ROOT = Path(__file__).resolve().parents[2]
FULL = os.environ.get("TETHER_AUTOBAHN_FULL") == "1"

#: Seconds for the whole run (the harness stops at this bound and reports what it cut).
BUDGET = 900.0 if FULL else 120.0

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
    """Every case run is OK, NON-STRICT or INFORMATIONAL."""
    cases = None if FULL else SAMPLE_GROUPS
    report = run_autobahn(echo_server, cases=cases, timeout=BUDGET, concurrency=4)
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
