"""--metrics-port on real server processes: the counts a scrape shows are the requests the test
made (by method and status class, a malformed request's 400, a shed 503), on both servers,
alone and under ``--workers 2`` (the supervisor serves the sum, and keeps an exited worker's
counters); and a client that dawdles on the metrics port does not block scrapes."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import free_port, reaped, spawn, wait_until

WSGI_APP = """
import os, time

def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/block":
        deadline = time.monotonic() + 30
        while not os.path.exists(os.environ["RELEASE_FILE"]) and time.monotonic() < deadline:
            time.sleep(0.01)
    status = "404 Not Found" if path == "/missing" else "200 OK"
    start_response(status, [("content-type", "text/plain")])
    return [str(os.getpid()).encode()]
"""

ASGI_APP = """
import os, time
import anyio

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/block":
        deadline = time.monotonic() + 30
        while not os.path.exists(os.environ["RELEASE_FILE"]) and time.monotonic() < deadline:
            await anyio.sleep(0.01)
    status = 404 if path == "/missing" else 200
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
"""

SERVERS = {
    "threaded": ("tether_threaded", WSGI_APP, ["--threads", "2"]),
    "asyncio": ("tether_asyncio", ASGI_APP, ["--loop", "asyncio"]),
}
#: The same ASGI server on trio: its own byte stream (tether_asyncio._trio).
TRIO = ("tether_asyncio", ASGI_APP, ["--backend", "trio"])

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    """Every sample of a scrape, by sample name and sorted labels."""
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200
    out: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def requests(samples: Samples, method: str, status: str) -> float:
    return samples.get(("tether_requests_total", (("method", method), ("status", status))), 0.0)


def send_malformed(port: int) -> bytes:
    """A request whose Content-Length is not a number: the server answers 400 and closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n")
        return raw.recv(100)


class Running:
    """A server process with --metrics-port, and what the test needs to talk to it."""

    def __init__(self, proc: subprocess.Popen[str], port: int, metrics: int, release: Path):
        self.proc = proc
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.metrics = metrics
        self.release = release


@pytest.fixture(params=sorted(SERVERS))
def server_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@contextlib.contextmanager
def start(kind: str, tmp_path: Path, *extra: str) -> Iterator[Running]:
    module, source, options = TRIO if kind == "trio" else SERVERS[kind]
    (tmp_path / "metrics_app.py").write_text(source)
    port, metrics = free_port(), free_port()
    release = tmp_path / "release"
    proc = spawn(
        module,
        tmp_path,
        *(["serve"] if module == "tether_asyncio" else []),
        "metrics_app:app",
        "--port",
        str(port),
        "--metrics-port",
        str(metrics),
        "--no-access-log",
        *options,
        *extra,
        env={"RELEASE_FILE": str(release)},
    )
    with reaped(proc):

        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{metrics}/metrics").status_code == 200
            except httpx.TransportError:
                return False

        if not wait_until(up, 30):
            proc.kill()
            raise AssertionError(f"the server did not start: {proc.communicate()[1]}")
        # The app's port too (under --workers the supervisor's metrics come first).
        assert wait_until(lambda: _answers(port), 30)
        yield Running(proc, port, metrics, release)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def slot_held(server: Running) -> Iterator[None]:
    """One request to /block holds the only --limit-concurrency slot while the body runs;
    then the app is released and that request must have got its 200."""
    held: list[int] = []
    blocker = threading.Thread(
        target=lambda: held.append(httpx.get(server.url + "/block", timeout=30).status_code)
    )
    blocker.start()
    try:
        gauge = ("tether_requests_in_flight", ())
        assert wait_until(lambda: scrape(server.metrics).get(gauge) == 1, 20)
        yield
    finally:
        server.release.write_text("go")
        blocker.join(30)
    assert held == [200]


def test_counts_match_the_requests_made(server_kind: str, tmp_path: Path) -> None:
    with start(server_kind, tmp_path, "--limit-concurrency", "1") as server:
        before = scrape(server.metrics)
        assert requests(before, "GET", "2xx") == 0
        with httpx.Client(base_url=server.url, timeout=10) as client:  # one connection
            for _ in range(7):
                assert client.get("/").status_code == 200
            for _ in range(2):
                assert client.get("/missing").status_code == 404
        assert send_malformed(server.port).startswith(b"HTTP/1.1 400")
        # Shed: one request holds the only --limit-concurrency slot, the next gets 503.
        with slot_held(server):
            assert httpx.get(server.url + "/", timeout=10).status_code == 503

        def settled() -> bool:
            return requests(scrape(server.metrics), "GET", "2xx") == 8

        assert wait_until(settled, 10)
        after = scrape(server.metrics)
        assert requests(after, "GET", "4xx") == 2
        assert requests(after, "GET", "5xx") == 1
        assert requests(after, "POST", "2xx") == 0
        assert after[("tether_protocol_errors_total", (("status", "400"),))] == 1
        assert after[("tether_shed_total", (("reason", "concurrency"),))] == 1
        assert after[("tether_keepalive_requests_total", ())] == 8  # the 2nd..9th on one
        assert after[("tether_request_duration_seconds_count", ())] == 11
        connections = ("tether_connections_total", ())
        assert after[connections] - before[connections] == 4
        assert after[("tether_received_bytes_total", ())] > 11 * len(b"GET / HTTP/1.1\r\n")
        assert after[("tether_sent_bytes_total", ())] > 11 * len(b"HTTP/1.1 200 OK\r\n")
        assert after[("tether_requests_in_flight", ())] == 0
        labels = {labels for name, labels in after if name == "tether_requests_total"}
        assert all(dict(pairs)["method"] in ("GET", "other", "any") for pairs in labels)


def test_a_slow_client_on_the_metrics_port_blocks_no_scrape(
    server_kind: str, tmp_path: Path
) -> None:
    with (
        start(server_kind, tmp_path) as server,
        socket.create_connection(("127.0.0.1", server.metrics), timeout=30) as slow,
    ):
        slow.sendall(b"GET /metr")  # and nothing more
        started = time.monotonic()
        for _ in range(3):
            assert ("tether_connections_total", ()) in scrape(server.metrics)
        assert time.monotonic() - started < 4  # well before the slow head's deadline
        # The dawdler is cut off once its head's time is up.
        assert slow.recv(100) == b""


def test_workers_add_up_and_restarts_are_counted(server_kind: str, tmp_path: Path) -> None:
    with start(server_kind, tmp_path, "--workers", "2") as server:
        pids: dict[str, int] = {}
        made = 0
        # A fresh connection each time, until both workers have answered.
        while len(pids) < 2 and made < 200:
            response = httpx.get(server.url + "/", headers={"connection": "close"}, timeout=10)
            pids[response.text] = pids.get(response.text, 0) + 1
            made += 1
        assert len(pids) == 2, "the kernel gave every connection to one worker"
        assert httpx.get(server.url + "/missing", timeout=10).status_code == 404
        assert send_malformed(server.port).startswith(b"HTTP/1.1 400")

        def counted() -> bool:
            samples = scrape(server.metrics)
            return requests(samples, "GET", "2xx") == made and requests(samples, "GET", "4xx") == 1

        assert wait_until(counted, 15)  # each worker writes its numbers once a second
        samples = scrape(server.metrics)
        assert samples[("tether_protocol_errors_total", (("status", "400"),))] == 1
        # made, the 404, the 400, and start()'s look at the port
        assert samples[("tether_connections_total", ())] == made + 3
        # A worker killed outright: its counters stay, and the restart is counted.
        os.kill(int(next(iter(pids))), signal.SIGKILL)
        restarts = ("tether_worker_restarts_total", (("reason", "exit"),))
        assert wait_until(lambda: scrape(server.metrics).get(restarts) == 1, 20)
        assert httpx.get(server.url + "/", timeout=10).status_code == 200
        assert wait_until(lambda: requests(scrape(server.metrics), "GET", "2xx") == made + 1, 15)


def _exact_exchange(port: int, requests: int) -> tuple[int, int]:
    """``requests`` GETs, each on a connection of its own with ``Connection: close`` and read to
    the server's close: (bytes written, bytes read), as the client counted them."""
    written = read = 0
    for n in range(requests):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            head = f"GET /{n} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
            raw.sendall(head)
            written += len(head)
            data = b""
            while chunk := raw.recv(65536):
                data += chunk
            assert data.startswith(b"HTTP/1.1 200 ")
            read += len(data)
    return written, read


@pytest.mark.parametrize("kind", ["threaded", "asyncio", "trio"])
def test_byte_counters_are_the_bytes_on_the_wire(kind: str, tmp_path: Path) -> None:
    """tether_received_bytes_total / tether_sent_bytes_total are exactly what the client wrote
    and read (the metrics port's own traffic is not counted), trio's stream included."""
    with start(kind, tmp_path) as server:
        before = scrape(server.metrics)
        sent, received = _exact_exchange(server.port, 5)

        def counted() -> bool:
            samples = scrape(server.metrics)
            return requests(samples, "GET", "2xx") == 5

        assert wait_until(counted, 10)
        after = scrape(server.metrics)
        grew = {
            name: after[(name, ())] - before[(name, ())]
            for name in ("tether_received_bytes_total", "tether_sent_bytes_total")
        }
        assert grew == {"tether_received_bytes_total": sent, "tether_sent_bytes_total": received}


def _one_response(raw: socket.socket) -> bytes:
    """The bytes of one response on a keep-alive connection (Content-Length or chunked)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = raw.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    while not (len(body) >= int(length[1]) if length else body.endswith(b"0\r\n\r\n")):
        chunk = raw.recv(65536)
        assert chunk, data
        body += chunk
    return head + b"\r\n\r\n" + body


@pytest.mark.parametrize("kind", ["threaded", "asyncio", "trio"])
def test_byte_counters_count_open_connections_once(kind: str, tmp_path: Path) -> None:
    """Bytes of a keep-alive connection still open are in a scrape already, and are not
    counted again when it closes (asyncio's streams count their own bytes; the server adds
    those of open connections at a scrape and folds a connection's in as it ends)."""
    names = ("tether_received_bytes_total", "tether_sent_bytes_total")
    with start(kind, tmp_path) as server:
        before = scrape(server.metrics)

        def grew() -> dict[str, float]:
            after = scrape(server.metrics)
            return {name: after[(name, ())] - before[(name, ())] for name in names}

        written = read = 0
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            for n in range(3):
                head = f"GET /{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                raw.sendall(head)
                written += len(head)
                read += len(_one_response(raw))
            want = {names[0]: written, names[1]: read}
            assert wait_until(lambda: grew() == want, 10), (grew(), want)
        # Closed: the connection's bytes moved from the open set to the totals, once.
        assert wait_until(lambda: scrape(server.metrics)[("tether_connections_open", ())] == 0, 10)
        assert grew() == want


def _exact_tls_exchange(port: int, requests: int) -> tuple[int, int]:
    """As :func:`_exact_exchange`, over TLS: the HTTP bytes written and read (decrypted)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    written = read = 0
    for n in range(requests):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        with context.wrap_socket(raw) as tls:
            head = f"GET /{n} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
            tls.sendall(head)
            written += len(head)
            data = b""
            with contextlib.suppress(ssl.SSLEOFError, ssl.SSLZeroReturnError):
                while chunk := tls.recv(65536):
                    data += chunk
            assert data.startswith(b"HTTP/1.1 200 "), data
            read += len(data)
    return written, read


@pytest.mark.parametrize("kind", ["threaded", "asyncio", "trio"])
def test_byte_counters_under_tls_are_the_decrypted_bytes(kind: str, tmp_path: Path) -> None:
    """Under TLS the byte counters are the HTTP bytes (decrypted) on every server: the same
    meaning as tether-threaded's SSL sockets give, asyncio's and trio's TLS streams included."""
    from tests.adversarial._servers import make_certificate

    cert, key = make_certificate(tmp_path)
    with start(kind, tmp_path, "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)) as server:
        before = scrape(server.metrics)
        sent, received = _exact_tls_exchange(server.port, 3)
        assert wait_until(lambda: requests(scrape(server.metrics), "GET", "2xx") == 3, 10)

        def grew() -> dict[str, float]:
            after = scrape(server.metrics)
            return {
                name: after[(name, ())] - before[(name, ())]
                for name in ("tether_received_bytes_total", "tether_sent_bytes_total")
            }

        want = {"tether_received_bytes_total": sent, "tether_sent_bytes_total": received}
        assert wait_until(lambda: grew() == want, 10), (grew(), want)


@pytest.mark.parametrize("window", [1, 40])
def test_shed_retry_after_comes_from_the_window(
    server_kind: str, window: int, tmp_path: Path
) -> None:
    """Shed at --limit-concurrency, each 503 says to come back within --retry-after-window
    (tether_server.shedding: a whole number of seconds from its second half), and each is
    counted in tether_shed_total."""
    limit = ("--limit-concurrency", "1", "--retry-after-window", str(window))
    with start(server_kind, tmp_path, *limit) as server:
        delays = []
        with slot_held(server):
            for _ in range(6):
                response = httpx.get(server.url + "/", timeout=10)
                assert response.status_code == 503
                delays.append(int(response.headers["retry-after"]))
        assert all((window + 1) // 2 <= delay <= window for delay in delays), delays
        shed = ("tether_shed_total", (("reason", "concurrency"),))
        assert scrape(server.metrics)[shed] == 6
