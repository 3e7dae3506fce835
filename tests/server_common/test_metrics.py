"""tether_server.metrics: the exposition parses with prometheus_client's own parser, the sum
over workers keeps counters of exited workers and gauges of live ones only, and /metrics is
served over a real socket."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tether_server.metrics import (
    Registry,
    SnapshotWriter,
    close_listener,
    merge,
    read_snapshots,
    render,
    serve_metrics,
)


def _families(text: bytes) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    out: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for family in text_string_to_metric_families(text.decode()):
        samples = out.setdefault(family.name, {})
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _registry() -> Registry:
    registry = Registry()
    requests = registry.counter("tether_requests_total", "Requests answered")
    requests.inc(labels=(("method", "GET"), ("status", "2xx")))
    requests.inc(2, labels=(("method", "POST"), ("status", "4xx")))
    registry.gauge("tether_connections_open", "Open connections").set(3)
    duration = registry.histogram("tether_request_duration_seconds", "Time to answer")
    for value in (0.001, 0.02, 0.3, 7.0):
        duration.observe(value, labels=(("method", "GET"),))
    return registry


def test_the_exposition_parses_as_prometheus_text() -> None:
    families = _families(_registry().render())
    requests = families["tether_requests"]
    assert requests[("tether_requests_total", (("method", "GET"), ("status", "2xx")))] == 1
    assert requests[("tether_requests_total", (("method", "POST"), ("status", "4xx")))] == 2
    assert families["tether_connections_open"][("tether_connections_open", ())] == 3
    duration = families["tether_request_duration_seconds"]
    get = (("method", "GET"),)
    assert duration[("tether_request_duration_seconds_count", get)] == 4
    assert abs(duration[("tether_request_duration_seconds_sum", get)] - 7.321) < 1e-9
    bucket = "tether_request_duration_seconds_bucket"
    assert duration[(bucket, (("le", "0.005"), *get))] == 1
    assert duration[(bucket, (("le", "0.5"), *get))] == 3
    assert duration[(bucket, (("le", "+Inf"), *get))] == 4


def test_label_values_are_escaped() -> None:
    registry = Registry()
    registry.counter("x_total", "a\nb").inc(labels=(("path", 'a"b\\c\nd'),))
    families = _families(registry.render())
    assert families["x"][("x_total", (("path", 'a"b\\c\nd'),))] == 1


def test_workers_add_up(tmp_path: Path) -> None:
    for _ in range(3):
        SnapshotWriter(_registry(), str(tmp_path)).write()  # same pid: one file, rewritten
    (tmp_path / "999999.json").write_bytes(
        (tmp_path / next(tmp_path.glob("*.json")).name).read_bytes()
    )
    alive = {int(p.stem) for p in tmp_path.glob("*.json")} - {999999}
    merged = _families(render(merge(read_snapshots(str(tmp_path), alive))))
    # Two workers' counters and histograms (one exited), the live one's gauge only.
    assert (
        merged["tether_requests"][("tether_requests_total", (("method", "GET"), ("status", "2xx")))]
        == 2
    )
    assert merged["tether_connections_open"][("tether_connections_open", ())] == 3
    get = (("method", "GET"),)
    assert (
        merged["tether_request_duration_seconds"][("tether_request_duration_seconds_count", get)]
        == 8
    )


def test_metrics_are_served_on_their_own_port() -> None:
    registry = _registry()
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    thread = serve_metrics(listener, registry.render, stop)
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with httpx.Client() as client:  # keep-alive: two scrapes on one connection
            for _ in range(2):
                response = client.get(url + "/metrics")
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
                assert "tether_requests_total" in response.text
            assert client.get(url + "/").status_code == 404
        with socket.create_connection(listener.getsockname()) as raw:
            raw.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n")
            assert raw.recv(100).startswith(b"HTTP/1.1 400")
    finally:
        close_listener(listener, stop)
        thread.join(5)
        assert not thread.is_alive()
