"""The metrics listener against hostile clients (over real sockets), and ServerMetrics' own
rules: label values from fixed sets only, numbers from several threads added up, a thread's
numbers kept once it has ended."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tether_server.metrics import MAX_SCRAPES, SCRAPE_TIMEOUT, close_listener, serve_metrics
from tether_server.server_metrics import ServerMetrics

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: bytes) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


@pytest.fixture
def listener() -> Iterator[tuple[str, int]]:
    metrics = ServerMetrics()
    metrics.request(b"GET", 200, time.monotonic() - 0.01, False)
    sock = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    thread = serve_metrics(sock, metrics.render, stop)
    try:
        yield sock.getsockname()
    finally:
        close_listener(sock, stop)
        thread.join(5)
        assert not thread.is_alive()


def test_a_slow_head_is_cut_off_and_blocks_no_one(listener: tuple[str, int]) -> None:
    url = "http://{}:{}/metrics".format(*listener)
    with socket.create_connection(listener, timeout=SCRAPE_TIMEOUT * 3) as slow:
        slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # the head never ends
        started = time.monotonic()
        assert httpx.get(url, timeout=10).status_code == 200
        assert time.monotonic() - started < SCRAPE_TIMEOUT
        assert slow.recv(100) == b""  # closed once its time is up
        assert time.monotonic() - started < SCRAPE_TIMEOUT * 3


def test_connections_past_the_cap_get_503_at_once(listener: tuple[str, int]) -> None:
    held = [socket.create_connection(listener, timeout=10) for _ in range(MAX_SCRAPES)]
    try:
        for sock in held:
            sock.sendall(b"GET /met")
        # Each held connection has its thread (the accepting thread started them in order):
        # one more is turned away, without waiting for the others.
        with socket.create_connection(listener, timeout=10) as extra:
            assert extra.recv(100).startswith(b"HTTP/1.1 503")
    finally:
        for sock in held:
            sock.close()
    url = "http://{}:{}/metrics".format(*listener)
    deadline = time.monotonic() + 10
    while True:  # the slots come back as the held connections' threads see them close
        response = httpx.get(url, timeout=10)
        if response.status_code == 200 or time.monotonic() > deadline:
            break
    assert response.status_code == 200


@pytest.mark.parametrize(
    "head",
    [
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000 + b"\r\n\r\n",
        b"GET /" + b"m" * 2000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n",
    ],
    ids=["big-header", "long-target", "big-body"],
)
def test_an_oversized_request_is_refused(listener: tuple[str, int], head: bytes) -> None:
    with socket.create_connection(listener, timeout=10) as raw:
        raw.sendall(head)
        assert raw.recv(100)[:12] in (b"HTTP/1.1 413", b"HTTP/1.1 414", b"HTTP/1.1 431")


def test_only_fixed_label_values() -> None:
    metrics = ServerMetrics()
    metrics.request(b"GET", 200, time.monotonic() - 0.001, False)
    metrics.request(b"BREW", 418, time.monotonic() - 0.001, True)  # a method of the client's own
    metrics.request(b"get", 999, time.monotonic() - 0.001, False)
    metrics.request(b"POST", 0, time.monotonic() - 0.001, False)  # no response was sent
    metrics.request(b"POST", -5, time.monotonic() - 0.001, False)  # nonsense: "none" too
    metrics.driver_closed("head timeout", b"HTTP/1.1 408 Request Timeout\r\n\r\n")
    metrics.driver_closed("x", b"HTTP/1.1 499 Whatever\r\n\r\n")
    samples = parse(metrics.render())
    requests = {
        labels for (name, labels), value in samples.items() if name == "tether_requests_total"
    }
    assert requests == {
        (("method", "GET"), ("status", "2xx")),
        (("method", "other"), ("status", "4xx")),
        (("method", "other"), ("status", "none")),
        (("method", "POST"), ("status", "none")),
    }
    assert samples[("tether_keepalive_requests_total", ())] == 1
    assert samples[("tether_timeouts_total", (("kind", "head"),))] == 1
    assert samples[("tether_protocol_errors_total", (("status", "408"),))] == 1
    assert samples[("tether_protocol_errors_total", (("status", "other"),))] == 1
    assert samples[("tether_request_duration_seconds_count", ())] == 5


def test_threads_add_up_and_ended_threads_still_count() -> None:
    metrics = ServerMetrics()

    def work() -> None:
        for _ in range(1000):
            metrics.request(b"GET", 200, time.monotonic() - 0.002, True)
            metrics.sent(10)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    middle = parse(metrics.render())  # while they run: whatever it is, it parses
    assert middle[("tether_sent_bytes_total", ())] <= 40000
    for thread in threads:
        thread.join()
    for _ in range(2):  # the second time, from the folded cells
        samples = parse(metrics.render())
        assert samples[("tether_requests_total", (("method", "GET"), ("status", "2xx")))] == 4000
        assert samples[("tether_sent_bytes_total", ())] == 40000
        bucket = ("tether_request_duration_seconds_bucket", (("le", "10.0"),))  # generous
        assert samples[bucket] == 4000


def test_durations_fill_the_histogram_and_a_101_stays_out() -> None:
    """One count per response feeds both the requests by status and the histogram (summed at
    scrape time): a fast answer lands in the first bucket, a slow one by its bound, a 101's
    WebSocket session is a request but not a duration."""
    metrics = ServerMetrics()
    # A head "from the future": a duration under the first bound whatever the scheduler does.
    metrics.request(b"GET", 200, time.monotonic() + 1, False)
    metrics.request(b"PUT", 503, time.monotonic() - 3, True)  # 2.5 < 3 (+ a delay) <= 5
    metrics.request(b"GET", 101, time.monotonic() - 60, False)  # a minute-long session
    samples = parse(metrics.render())
    assert samples[("tether_requests_total", (("method", "GET"), ("status", "1xx")))] == 1
    assert samples[("tether_requests_total", (("method", "PUT"), ("status", "5xx")))] == 1

    def bucket(le: str) -> float:
        return samples[("tether_request_duration_seconds_bucket", (("le", le),))]

    assert (bucket("0.005"), bucket("2.5"), bucket("5.0"), bucket("+Inf")) == (1, 1, 2, 2)
    assert samples[("tether_request_duration_seconds_count", ())] == 2
    assert 1 <= samples[("tether_request_duration_seconds_sum", ())] < 10  # -1 + 3, no 60
