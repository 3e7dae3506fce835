"""``--log-format json``: every line a server writes to stderr is one JSON object, start-up,
access and shutdown lines alike, on both servers; and the text access line as shipped."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import httpx
import pytest

from tests.processes import SLOW_APP, LogLines, free_port, reaped, spawn
from tests.server_common.test_systemd_processes import WSGI_APP

SERVERS = {
    "asyncio": ("tether_asyncio", "serve", "slowapp:app"),
    "threaded": ("tether_threaded", "wsgiapp:app"),
}


@pytest.mark.parametrize("server", SERVERS)
def test_json_log_lines(tmp_path: Path, server: str) -> None:
    (tmp_path / "slowapp.py").write_text(SLOW_APP)
    (tmp_path / "wsgiapp.py").write_text(WSGI_APP)
    port = free_port()
    proc = spawn(*SERVERS[server][:1], tmp_path, *SERVERS[server][1:], "--port", str(port),
                 "--log-format", "json")  # fmt: skip
    with reaped(proc):
        log = LogLines(proc)
        log.wait_for(f":{port}")
        assert httpx.get(f"http://127.0.0.1:{port}/ok", timeout=10).status_code == 200
        log.wait_for("/ok")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        text = log.finish()
    records = [json.loads(line) for line in text.splitlines()]
    assert records
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys()
        assert record["time"].endswith("Z")
    access = [r for r in records if r["logger"] == "tether.access"]
    assert len(access) == 1 and "/ok" in access[0]["message"]


@pytest.mark.parametrize("server", SERVERS)
def test_text_access_lines_as_shipped(tmp_path: Path, server: str) -> None:
    # Written without a log record (tether_server.logline): the line must be the one the
    # logging module would write, each on its own line, none lost at shutdown.
    (tmp_path / "slowapp.py").write_text(SLOW_APP)
    (tmp_path / "wsgiapp.py").write_text(WSGI_APP)
    port = free_port()
    proc = spawn(*SERVERS[server][:1], tmp_path, *SERVERS[server][1:], "--port", str(port))
    with reaped(proc):
        log = LogLines(proc)
        log.wait_for(f":{port}")
        with httpx.Client(timeout=10) as client:
            for n in range(20):
                assert client.get(f"http://127.0.0.1:{port}/ok/{n}").status_code == 200
        log.wait_for("/ok/19")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        text = log.finish()
    access = [line for line in text.splitlines() if "/ok" in line]
    assert len(access) == 20
    for n, line in enumerate(access):
        assert re.fullmatch(rf'INFO: 127\.0\.0\.1:\d+ - "GET /ok/{n} HTTP/1\.1" 200 \d+', line)
