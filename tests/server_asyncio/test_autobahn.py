"""The Autobahn WebSocket suite (via kosoku) against an ASGI echo app on the anyio server.

On asyncio every section runs, compression included, except the 42 permessage-deflate cases
with 64-128 KiB messages where zlib itself is slow (``tests.autobahn.LARGE_DEFLATE_CASES``:
minutes of CPU, no code path the other cases miss). On trio, which shares every line of
protocol handling and differs only in how bytes move, sections 1 to 10 run whole with the first
case of 12.1, 12.2 and of every 13.x subsection (``tests.autobahn.SAMPLE_GROUPS``: each deflate
negotiation variant), to keep CI inside its budget. ``TETHER_AUTOBAHN_FULL=1`` runs everything
on both.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.autobahn import LARGE_DEFLATE_CASES, SAMPLE_GROUPS, run_autobahn
from tests.server_asyncio.apps import echo

FULL = os.environ.get("TETHER_AUTOBAHN_FULL") == "1"
BUDGET = 900.0 if FULL else 400.0

pytestmark = [pytest.mark.slow, pytest.mark.timeout(BUDGET + 60)]


def test_autobahn(serve: Any, backend: str) -> None:
    """Every case is OK, NON-STRICT or INFORMATIONAL, and closes cleanly."""
    srv = serve(echo)
    if FULL:
        report = run_autobahn(srv.address, timeout=BUDGET, concurrency=2)
    elif backend == "trio":
        report = run_autobahn(srv.address, cases=SAMPLE_GROUPS, timeout=BUDGET, concurrency=2)
    else:
        report = run_autobahn(
            srv.address, exclude=LARGE_DEFLATE_CASES, timeout=BUDGET, concurrency=2
        )
    print(report.summary())
    assert report.ok, report.summary()
