"""The Autobahn WebSocket suite (via kosoku) against an ASGI echo app on the anyio server.

Every case of sections 1 to 10 runs on both backends, with the first case of 12.1, 12.2 and of
every 13.x subsection (each permessage-deflate negotiation variant). The deflate sections send
a thousand messages per case and take minutes; the whole suite runs with
``TETHER_AUTOBAHN_FULL=1`` (and runs in full against the core in tests/websocket).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.autobahn import DEFAULT_GROUPS, run_autobahn
from tests.server_asyncio.apps import echo

FULL = os.environ.get("TETHER_AUTOBAHN_FULL") == "1"
BUDGET = 900.0 if FULL else 75.0

pytestmark = [pytest.mark.slow, pytest.mark.timeout(BUDGET + 60)]

#: The first case of 12.1 and 12.2 (payload kinds) and of every 13.x (every negotiation
#: variant: window bits, no-context-takeover on each side).
_DEFLATE_SAMPLE = ["12.1.1", "12.2.1", *(f"13.{i}.1" for i in range(1, 8))]
CASES = (
    list(DEFAULT_GROUPS)
    if FULL
    else [
        *(g for g in DEFAULT_GROUPS if not g.startswith(("12.", "13."))),
        *_DEFLATE_SAMPLE,
    ]
)


def test_autobahn(serve: Any) -> None:
    """Every case is OK, NON-STRICT or INFORMATIONAL, and closes cleanly."""
    srv = serve(echo)
    report = run_autobahn(srv.address, cases=CASES, timeout=BUDGET, concurrency=2)
    print(report.summary())
    assert report.ok, report.summary()
