"""The Autobahn WebSocket suite (via kosoku) against an ASGI echo app on the anyio server.

Every section runs on both backends, compression included, except the 42 permessage-deflate
cases with 64-128 KiB messages where zlib itself is slow (``tests.autobahn.LARGE_DEFLATE_CASES``:
minutes of CPU, no code path the other cases miss); ``TETHER_AUTOBAHN_FULL=1`` adds them, and
they run by default against the core's echo server in tests/websocket.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.autobahn import LARGE_DEFLATE_CASES, run_autobahn
from tests.server_asyncio.apps import echo

FULL = os.environ.get("TETHER_AUTOBAHN_FULL") == "1"
BUDGET = 900.0 if FULL else 400.0

pytestmark = [pytest.mark.slow, pytest.mark.timeout(BUDGET + 60)]


def test_autobahn(serve: Any) -> None:
    """Every case is OK, NON-STRICT or INFORMATIONAL, and closes cleanly."""
    srv = serve(echo)
    report = run_autobahn(
        srv.address, exclude=() if FULL else LARGE_DEFLATE_CASES, timeout=BUDGET, concurrency=2
    )
    print(report.summary())
    assert report.ok, report.summary()
