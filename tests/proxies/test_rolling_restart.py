"""A rolling restart behind nginx (and HAProxy) loses no request.

One ``--workers 2`` supervisor (of each server) behind the proxy, configured from
examples/deploy/; four clients keep sending requests through it (GETs and POSTs on keep-alive
connections) while the supervisor gets SIGHUP: new workers start, the old ones drain. Every
request must get its own 200. nginx's upstream keep-alive timeout (4 s) is shorter
than Tether's (5 s), so nginx never sends on a connection Tether is closing for idleness; a
draining worker answers the next request on an idle pooled connection with
``Connection: close``. Retries nginx made (a request on a pooled connection that failed before
any response, re-sent: GETs only, never POSTs) show in its access log as two upstream
addresses, and are counted and reported (HAProxy's retries: the last connection count of
its log lines).
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import threading
from pathlib import Path

import httpx
import pytest

from tests.processes import LogLines, free_port, gone, reaped, wait_until
from tests.proxies.helpers import PROXIES, SERVERS, binary, listening, proxy_process, tether

pytestmark = pytest.mark.timeout(120)

TOTAL = 2000
CLIENTS = 4


class _Load:
    """Clients sending requests through the proxy until stopped; what they saw."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ok = 0
        self.pids: list[int] = []
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(CLIENTS)]
        for thread in self._threads:
            thread.start()

    def _run(self, number: int) -> None:
        with httpx.Client(timeout=30) as client:
            n = 0
            while not self._stop.is_set():
                ident = f"{number}-{n}"
                body = ident.encode() * (n % 5)
                try:
                    if n % 4 == 3:
                        response = client.post(f"{self.url}/post?id={ident}", content=body)
                    else:
                        response = client.get(f"{self.url}/get?id={ident}")
                        body = b""
                    info = json.loads(response.content.partition(b"\n")[0])
                    assert response.status_code == 200, response.status_code
                    assert info["query"] == f"id={ident}"
                    assert info["sha256"] == hashlib.sha256(body).hexdigest()
                except (AssertionError, ValueError, httpx.HTTPError) as exc:
                    with self._lock:
                        self.failures.append(f"{ident}: {exc!r}")
                else:
                    with self._lock:
                        self.ok += 1
                        self.pids.append(info["pid"])
                n += 1

    def seen(self) -> set[int]:
        """The pids that have answered so far."""
        with self._lock:
            return set(self.pids)

    def done(self) -> int:
        with self._lock:
            return self.ok + len(self.failures)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


def _retries(access_log: str) -> int:
    """Requests nginx sent to more than one upstream (``upstream=[a, b]``)."""
    return len(re.findall(r"upstream=\[[^\]]*, ", access_log))


def _haproxy_retries(log: str) -> int:
    """Requests HAProxy retried: the last of the five connection counts in an httplog line
    ("actconn/feconn/beconn/srv_conn/retries") is not 0."""
    counts = re.findall(r" [A-Za-z-]{4} \d+/\d+/\d+/\d+/\+?(\d+) ", log)
    return sum(int(count) > 0 for count in counts)


@pytest.mark.parametrize("proxy", PROXIES)
@pytest.mark.parametrize("server", SERVERS)
def test_sighup_behind_a_proxy_loses_no_request(tmp_path: Path, server: str, proxy: str) -> None:
    binary(proxy)
    port = free_port()
    proc = tether(server, port, tmp_path, "--workers", "2")
    with reaped(proc):
        log = LogLines(proc)
        assert listening(port), log.text
        listen = (free_port(), free_port())
        with proxy_process(proxy, listen, [port], tmp_path / proxy) as proxy_log:
            load = _Load(f"http://127.0.0.1:{listen[0]}")
            try:
                assert wait_until(lambda: load.done() >= TOTAL // 4, 60)
                old = load.seen()
                proc.send_signal(signal.SIGHUP)
                log.wait_for("reloaded: new workers")
                assert wait_until(lambda: all(gone(pid) for pid in old), 30), log.text
                switched = load.done()
                assert wait_until(lambda: load.done() >= max(TOTAL, switched + 300), 90)
            finally:
                load.stop()
            access = (tmp_path / proxy / "access.log").read_text() if proxy == "nginx" else ""
        haproxy_log = "" if proxy == "nginx" else proxy_log.finish()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    lines = access.count("\n") or haproxy_log.count(' HTTP/1.1"')
    retries = _retries(access) if proxy == "nginx" else _haproxy_retries(haproxy_log)
    print(f"\n{proxy} {server}: {load.ok} ok, {len(load.failures)} lost, {lines} logged by {proxy}, "
          f"{retries} retried by {proxy}, old workers {sorted(old)}")  # fmt: skip
    assert load.failures == [], load.failures[:5]
    assert load.ok >= TOTAL
    assert set(load.pids[switched:]).isdisjoint(old)
    assert "Traceback" not in log.finish()
