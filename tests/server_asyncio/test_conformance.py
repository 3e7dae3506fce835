"""The spec/http1 vectors over real sockets against the anyio server (asyncio and trio)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server_asyncio.apps import reflect

pytestmark = pytest.mark.timeout(120)


def test_spec_vectors_over_a_socket(serve: Any) -> None:
    try:
        from tests.conformance import check_server
    except ImportError as exc:  # the lead's harness is not in this checkout
        pytest.skip(f"tests/conformance.py is not available: {exc}")
    srv = serve(reflect)
    problems = check_server(srv.host, srv.port)
    assert problems == [], "\n".join(problems)
