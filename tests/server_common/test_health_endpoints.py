"""--health-path-prefix and the workers' heartbeats, over real processes on both servers.

The probes are answered by the server itself: never by the app, and past --limit-concurrency
(a busy server must not look dead); readiness turns 503 at the limit. A worker frozen with
SIGSTOP sends no heartbeat, so the supervisor kills it and starts another
(--timeout-worker-healthcheck)."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import httpx
import pytest

from tests.processes import SLOW_APP, LogLines, free_port, reaped, spawn, wait_until

WSGI_SLOW = """
import os, time

def app(environ, start_response):
    delay = float(environ.get("QUERY_STRING") or 0)
    if delay:
        print("in app", flush=True)
        time.sleep(delay)
    start_response("200 OK", [("Content-Length", "4"), ("X-Pid", str(os.getpid()))])
    return [b"done"]
"""

SERVERS = {
    "asyncio": ("tether_asyncio", "serve", "slowapp:app"),
    "threaded": ("tether_threaded", "wsgislow:app"),
}


def _start(tmp_path: Path, server: str, *options: str):  # type: ignore[no-untyped-def]
    (tmp_path / "slowapp.py").write_text(SLOW_APP)
    (tmp_path / "wsgislow.py").write_text(WSGI_SLOW)
    port = free_port()
    module, *args = SERVERS[server]
    proc = spawn(module, tmp_path, *args, "--port", str(port), *options)
    return proc, port


@pytest.mark.parametrize("server", SERVERS)
def test_probes_are_answered_by_the_server_past_the_concurrency_limit(
    tmp_path: Path, server: str
) -> None:
    options = ("--health-path-prefix", "/_tether", "--limit-concurrency", "1")
    if server == "threaded":
        options += ("--threads", "1")
    proc, port = _start(tmp_path, server, *options)
    url = f"http://127.0.0.1:{port}"
    with reaped(proc):
        LogLines(proc).wait_for(f":{port}")
        out = LogLines(proc, stdout=True)
        for probe in ("live", "ready", "startup"):
            response = httpx.get(f"{url}/_tether/{probe}", timeout=5)
            assert response.status_code == 200, probe
            assert response.json() == {"status": "ok"}
        assert httpx.get(f"{url}/_tether/other", timeout=5).text == "done"  # the app's
        # A probe asking to upgrade is still a probe: answered before the app, on both servers.
        upgrade = {
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        }
        response = httpx.get(f"{url}/_tether/live", headers=upgrade, timeout=5)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        # One request holds the only slot: the app's requests are shed, the probes are not.
        slow = threading.Thread(target=httpx.get, args=(f"{url}/?2",), kwargs={"timeout": 10})
        slow.start()
        try:
            out.wait_for("in app")  # the slow request holds the only slot now
            assert wait_until(
                lambda: httpx.get(url + "/", timeout=5).status_code == 503, timeout=10
            )
            assert httpx.get(f"{url}/_tether/live", timeout=5).status_code == 200
            ready = httpx.get(f"{url}/_tether/ready", timeout=5)
            assert ready.status_code == 503
            assert json.loads(ready.text)["reason"] == "at --limit-concurrency"
        finally:
            slow.join(15)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


@pytest.mark.parametrize("server", SERVERS)
def test_a_frozen_worker_is_killed_and_replaced(tmp_path: Path, server: str) -> None:
    # 1 s: the shortest check a healthy worker must pass (its heartbeats come every 0.25 s).
    proc, port = _start(tmp_path, server, "--workers", "2", "--timeout-worker-healthcheck", "1")
    url = f"http://127.0.0.1:{port}/"

    def answered() -> bool:
        try:
            return httpx.get(url, timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    with reaped(proc):
        log = LogLines(proc)
        log.wait_for("started 2 workers")
        assert wait_until(answered, timeout=20)
        frozen = int(httpx.get(url, timeout=5).headers["x-pid"])
        os.kill(frozen, signal.SIGSTOP)  # its loop stops: no more heartbeats
        log.wait_for(f"(pid {frozen}) sent no heartbeat", timeout=20)
        log.wait_for("restarting it", timeout=20)
        assert wait_until(answered, timeout=20)
        pids = {httpx.get(url, timeout=5).headers["x-pid"] for _ in range(10)}
        assert str(frozen) not in pids
        # Healthy workers, one of them busy for twice the check, are left alone.
        assert httpx.get(url + "?2", timeout=20).status_code == 200
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        assert log.finish().count("sent no heartbeat") == 1
