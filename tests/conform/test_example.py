"""``examples/test_my_server.py``, the property tests a user points at their own server: they
pass against tether serve and fail (with the shrunk request) against a server that answers
pipelined requests out of order."""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

import tether.strategies
from tests import processes
from tests.conform.broken_peers import ReversingServer
from tests.conftest import ROOT
from tests.processes import free_port, read_until, reaped, spawn
from tether.http1 import NEED_DATA, Data, EndOfMessage, Request, ServerConnection


def run_example(url: str, *plugins: str) -> subprocess.CompletedProcess[str]:
    env = {"TETHER_TEST_URL": url, "TETHER_TEST_EXAMPLES": "15", "TETHER_TEST_TIMEOUT": "1"}
    return processes.run_example("test_my_server.py", env, *plugins)


@pytest.fixture
def tether_url() -> Iterator[str]:
    port = free_port()
    args = ["serve", "tests.conform.apps:asgi_echo_ws", "--port", str(port), "--no-access-log"]
    with reaped(spawn("tether_asyncio", ROOT, *args)) as proc:
        read_until(proc, "running on")
        yield f"http://127.0.0.1:{port}/"


def test_example_passes_against_tether_serve(tether_url: str) -> None:
    out = run_example(tether_url)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "2 passed" in out.stdout


def test_example_fails_against_an_out_of_order_server() -> None:
    server = ReversingServer()
    try:
        out = run_example(f"http://127.0.0.1:{server.port}/", "tests.conform.no_shrink")
    finally:
        server.close()
    assert out.returncode == 1, out.stdout[-3000:]
    # The pipelined test is the one that fails. (How it fails depends on the batch drawn: a
    # reordered answer, or a request the reversed stream left unanswered.)
    failed = [line for line in out.stdout.splitlines() if line.startswith("FAILED ")]
    assert failed and all("test_pipelined_requests_are_answered_in_order" in f for f in failed), (
        out.stdout[-3000:]
    )


def _parse_with_core(wire: bytes) -> SimpleNamespace:
    """What ``my_parse`` in the docstring stands for: here, the core's server connection."""
    conn = ServerConnection()
    conn.receive_data(wire)
    parsed = SimpleNamespace(body=b"", trailers=[])
    while (event := conn.next_event()) is not NEED_DATA:
        if isinstance(event, Request):
            parsed.method, parsed.target, parsed.headers = event.method, event.target, event.headers
        elif isinstance(event, Data):
            parsed.body += event.data
        elif isinstance(event, EndOfMessage):
            parsed.trailers = list(event.trailers)
            return parsed
    raise AssertionError("incomplete request")


def test_the_strategies_docstring_example_runs() -> None:
    doc = tether.strategies.__doc__ or ""
    code = textwrap.dedent(doc.split("A parser under test::\n", 1)[1].split("\n\nA running", 1)[0])
    namespace: dict[str, object] = {"my_parse": _parse_with_core}
    exec(code, namespace)
    test = namespace["test_my_parser"]
    assert callable(test)
    test()  # Hypothesis runs it: the core must report exactly what was generated
