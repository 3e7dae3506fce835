"""The spec/ conformance vectors over a real socket against the threaded server."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from threaded_helpers import running

ROOT = Path(__file__).resolve().parents[2]


def _app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read(-1)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok " + body]


def test_spec_vectors_over_a_socket() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        from tests.conformance import check_server, server_vectors
    except ImportError:
        pytest.skip("tests/conformance.py (the shared vector runner) is not in the tree yet")
    assert len(server_vectors()) > 100  # the runner found the spec/http1 vectors
    with running(_app) as server:
        host, port = server.address[:2]
        failures = check_server(host, port)
    assert not failures, "\n".join(failures)
