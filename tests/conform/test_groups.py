"""The websocket, traffic and write-timeout groups of ``tether conform``: both Tether servers
pass every probe; uvicorn's findings are recorded; servers broken on purpose fail the probes
written for their flaws."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conform.broken_peers import LaxWebSocketServer, OneReadServer, ReversingServer
from tests.conform.broken_servers import BrokenServer, Flaws
from tests.conform.test_conform import conform
from tests.conftest import ROOT
from tests.processes import RUNNING, free_port, read_until, reaped, spawn
from tether_server.conform import Result, Verdict, exchange, run, target_from_url
from tether_server.conform._report import text

NEW_GROUPS = ["websocket", "traffic", "write-timeout"]


def _drained(proc: object) -> None:
    """Keep reading a server's stderr, so that its log never blocks it."""
    stream = getattr(proc, "stderr", None)
    if stream is not None:
        threading.Thread(target=stream.read, daemon=True).start()


@pytest.fixture(scope="module", params=["asyncio", "threaded"])
def tether_port(request: pytest.FixtureRequest) -> Iterator[int]:
    port = free_port()
    common = ["--port", str(port), "--timeout-write", "1", "--no-access-log"]
    if request.param == "asyncio":
        proc = spawn("tether_asyncio", ROOT, "serve", "tests.conform.apps:asgi_echo_ws", *common)
        ready = RUNNING
    else:
        proc = spawn("tether_threaded", ROOT, "tests.conform.apps:wsgi_echo_ws", *common)
        ready = RUNNING
    with reaped(proc):
        read_until(proc, ready)
        _drained(proc)
        yield port


def _results(port: int, slow_seconds: float = 3.0, timeout: float = 2.0) -> dict[str, Result]:
    target = target_from_url(f"http://127.0.0.1:{port}/", timeout)
    found = run(
        target,
        NEW_GROUPS,
        slow=True,
        slow_seconds=slow_seconds,
        large_path="/big",
        requests=40,
        seed=1,
    )
    return {result.id: result for result in found}


def test_tether_servers_pass_every_new_probe(tether_port: int) -> None:
    results = _results(tether_port)
    assert len([i for i in results if i.startswith("ws-")]) == 25
    assert {i: r.observed for i, r in results.items() if r.verdict is not Verdict.PASS} == {}
    # Measured, not assumed: the write was given up on, the echo probes ran.
    assert "unread" in results["write-timeout"].observed
    assert "fragmented" in results["ws-echo-fragmented"].observed
    # The core checks UTF-8 as it arrives: the invalid fragment fails the message at once.
    assert "failed on the invalid fragment" in results["ws-utf8-fragment"].observed


@pytest.fixture(scope="module")
def uvicorn_port() -> Iterator[int]:
    port = free_port()
    args = ["tests.conform.apps:asgi_echo_ws", "--port", str(port), "--no-access-log"]
    with reaped(spawn("uvicorn", ROOT, *args)) as proc:
        read_until(proc, "Uvicorn running on")
        _drained(proc)
        yield port


#: What uvicorn 0.54.0 (httptools 0.9.0, websockets 17.4; requirements-dev.txt) gets wrong.
UVICORN = {
    # RFC 6455 4.4: 400 without Sec-WebSocket-Version to an unsupported version.
    "ws-version": Verdict.FAIL,
    # httptools answers 400 to methods it does not know (RFC 9110 9.1 SHOULD: 501). (With
    # --seed 0 it also refuses a valid request with BWS before a chunk extension: a FAIL.)
    "traffic-keep-alive": Verdict.WARN,
    # A valid request followed by an unknown method in the same write is answered 400.
    "traffic-pipelined": Verdict.FAIL,
    # No write timeout: a client that never reads holds the connection.
    "write-timeout": Verdict.WARN,
}


def test_uvicorn_findings_are_recorded(uvicorn_port: int) -> None:
    results = _results(uvicorn_port, slow_seconds=2.0)
    assert {i: r.verdict for i, r in results.items() if r.verdict is not Verdict.PASS} == UVICORN
    assert "400 pipelined, 200 alone" in results["traffic-pipelined"].observed
    assert "still waiting to write" in results["write-timeout"].observed


def test_a_lax_websocket_server_fails_the_framing_probes() -> None:
    server = LaxWebSocketServer()
    try:
        target = target_from_url(f"ws://127.0.0.1:{server.port}/", 0.5)
        results = {r.id: r for r in run(target, ["websocket"])}
    finally:
        server.close()
    passed = {i for i, r in results.items() if r.verdict is Verdict.PASS}
    # What it does right is passed: echoes, pong, the close handshake.
    # (A character split between fragments comes back intact: it echoes each as it came.)
    assert passed == {
        "ws-echo-text",
        "ws-echo-binary",
        "ws-echo-fragmented",
        "ws-echo-utf8-split",
        "ws-ping",
        "ws-close",
    }
    failed = {i for i, r in results.items() if r.verdict is Verdict.FAIL}
    assert failed == set(results) - passed
    assert "answered 101" in results["ws-version"].observed
    assert "text of 8: 'unmasked'" in results["ws-unmasked"].observed


def test_an_out_of_order_server_fails_the_pipelined_probe() -> None:
    server = ReversingServer()
    try:
        target = target_from_url(f"http://127.0.0.1:{server.port}/", 1.0)
        results = {r.id: r for r in run(target, ["traffic"], requests=40, seed=1)}
        result = results["traffic-pipelined"]
        assert results["traffic-keep-alive"].verdict is Verdict.PASS, results["traffic-keep-alive"]
        assert results["traffic-keep-alive"].counterexample is None
        assert result.verdict is Verdict.FAIL
        assert "out of order" in result.observed
        # Reduced to two requests in one write, with nothing left to drop.
        example = result.counterexample
        assert example is not None and example.reproduced and example.complete, example
        assert example.pipelined and len(example.requests) == 2 and example.splits == ((), ())
        assert "out of order" in example.failure
        # The printed bytes are the counterexample: sent again as they are, they come back
        # reversed (each answer names its request).
        first, second = (b" ".join(wire.split(b" ")[:2]) for wire in example.requests)
        replayed = exchange(target, [b"".join(example.requests)], expect=(b"GET", b"GET"))
        assert 0 <= replayed.raw.find(second + b" ") < replayed.raw.find(first + b" "), replayed
        report = text("url", "v", [result])
        assert f"request 2: {example.requests[1]!r}" in report
    finally:
        server.close()


def test_a_server_that_parses_per_read_fails_the_split_requests() -> None:
    server = OneReadServer()
    started = time.monotonic()
    try:
        target = target_from_url(f"http://127.0.0.1:{server.port}/", 1.0)
        found = run(target, ["traffic"], requests=20, seed=3, shrink_seconds=3.0)
        results = {r.id: r for r in found}
    finally:
        server.close()
    # Bounded although every pipelined replay waits out the 1 s timeout.
    assert time.monotonic() - started < 40
    result = results["traffic-keep-alive"]
    assert result.verdict is Verdict.FAIL, result
    assert "sent in pieces" in result.observed and ": 400" in result.observed
    # One request is enough, and one cut in it: the cut is what the server mishandles.
    example = result.counterexample
    assert example is not None and not example.pipelined, result
    assert len(example.requests) == 1 and len(example.splits[0]) == 1, example
    cut = example.splits[0][0]
    pieces = f"written in 2 pieces, cut at byte {cut}: {example.requests[0][:cut]!r} + "
    assert pieces in text("url", "v", [result])
    pipelined = results["traffic-pipelined"].counterexample
    assert pipelined is not None and len(pipelined.requests) <= 2
    assert pipelined.seconds < 3.0 + 2 * 1.0 + 1, pipelined  # the bound, and one last replay


def test_a_server_that_misframes_chunked_bodies_gets_a_small_counterexample(
    tmp_path: Path,
) -> None:
    server = BrokenServer(Flaws(trailers_as_request=True))
    base = BrokenServer(Flaws())
    try:
        url = f"http://127.0.0.1:{server.port}/"
        junit = tmp_path / "j.xml"
        out = conform(
            url,
            "--only",
            "traffic",
            "--json",
            "--timeout",
            "1",
            "--seed",
            "5",
            "--junit",
            str(junit),
        )
        assert out.returncode == 1, out.stdout[-3000:] + out.stderr
        results = {r["id"]: r for r in json.loads(out.stdout)["results"]}
        result = results["traffic-keep-alive"]
        assert result["verdict"] == "fail"
        # Two requests: one whose trailer the server reads as a request, and the one after it
        # that gets the answer to that. Its bytes are in the JSON exactly (one code point per
        # byte) and as repr, and in the JUnit failure.
        example = result["counterexample"]
        wires = [wire.encode("latin-1") for wire in example["requests"]]
        assert example["requests_repr"] == [repr(wire) for wire in wires]
        assert len(wires) == 2 and example["reproduced"] and example["complete"], example
        assert example["splits"] == [[], []]
        head, _, body = wires[0].partition(b"\r\n\r\n")
        assert b"Transfer-Encoding:chunked" in head and b"\r\n0\r\n" in b"\r\n" + body
        assert not body.endswith(b"\r\n0\r\n\r\n"), "a trailer field is what it needs"
        assert repr(wires[0]) in junit.read_text()
        # The exact bytes show the flaw: the second one refused by the flawed server only.
        methods = [b"HEAD" if wire.startswith(b"HEAD ") else b"GET" for wire in wires]
        for flawed, statuses in ((server, [200, 400]), (base, [200, 200])):
            target = target_from_url(f"http://127.0.0.1:{flawed.port}/", 1.0)
            assert exchange(target, [b"".join(wires)], expect=methods).statuses == statuses
    finally:
        server.close()
        base.close()


def test_echo_probes_are_skipped_when_the_server_does_not_echo(tmp_path: Path) -> None:
    port = free_port()
    # The threaded server's plain websocket_app-less app: accept, then read until closed.
    proc = spawn("tether_threaded", ROOT, "tests.conform.apps:wsgi_silent_ws", "--port", str(port))
    with reaped(proc):
        read_until(proc, RUNNING)
        _drained(proc)
        out = conform(
            f"ws://127.0.0.1:{port}/",
            "--json",
            "--junit",
            str(tmp_path / "j.xml"),
            "--timeout",
            "1",
        )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr
    verdicts = {r["id"]: r["verdict"] for r in json.loads(out.stdout)["results"]}
    assert verdicts["ws-echo-text"] == "info"
    assert verdicts["ws-echo-binary"] == verdicts["ws-echo-fragmented"] == "skip"
    assert verdicts["ws-echo-utf8-split"] == "skip"
    assert set(verdicts.values()) == {"pass", "info", "skip"}
    assert (tmp_path / "j.xml").read_text().count("<skipped") == 3


def test_write_timeout_is_skipped_unless_slow() -> None:
    server = ReversingServer()
    try:
        target = target_from_url(f"http://127.0.0.1:{server.port}/", 1.0)
        (result,) = run(target, ["write-timeout"])
    finally:
        server.close()
    assert result.verdict is Verdict.SKIP and "--slow" in result.observed
