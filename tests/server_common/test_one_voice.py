"""Both servers say the same things, in the same words, when they start and stop: the lines
come from one place (tether_server.startup), so a log watcher, a test or a human reads either
server's the same way."""

from __future__ import annotations

import re
import signal
import threading
from pathlib import Path

import httpx
import pytest

from tests.processes import RUNNING, STOPPED, LogLines, free_port, reaped, spawn

ASGI_APP = """
import anyio

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    print("in app", flush=True)
    await anyio.sleep(float(scope["query_string"] or b"0"))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"4")]})
    await send({"type": "http.response.body", "body": b"done"})
"""

WSGI_APP = """
import time

def app(environ, start_response):
    print("in app", flush=True)
    time.sleep(float(environ.get("QUERY_STRING") or "0"))
    start_response("200 OK", [("Content-Length", "4")])
    return [b"done"]
"""

SERVERS = {
    "asyncio": ("tether_asyncio", "serve", "voiceapp:app", "--lifespan", "off"),
    "threaded": ("tether_threaded", "voiceapp:app"),
}


def _lines(tmp_path: Path, server: str) -> list[str]:
    """The server's log of one run: start, a request in flight, SIGTERM, drain, stop; ports
    and what tells the servers apart (their engine) replaced by placeholders."""
    folder = tmp_path / server
    folder.mkdir()
    (folder / "voiceapp.py").write_text(ASGI_APP if server == "asyncio" else WSGI_APP)
    port = free_port()
    module, *rest = SERVERS[server]
    proc = spawn(module, folder, *rest, "--port", str(port), "--no-access-log")
    with reaped(proc):
        log = LogLines(proc)
        out = LogLines(proc, stdout=True)
        log.wait_for(RUNNING)
        answers: list[httpx.Response] = []
        client = threading.Thread(
            target=lambda: answers.append(httpx.get(f"http://127.0.0.1:{port}/?1", timeout=20))
        )
        client.start()
        out.wait_for("in app")
        proc.send_signal(signal.SIGTERM)
        client.join(30)
        assert proc.wait(30) == 0, log.text
        text = log.finish()
    assert answers and answers[0].text == "done"
    text = text.replace(str(port), "PORT")
    return [re.sub(r"\((ASGI, asyncio|WSGI, \d+ threads);", "(ENGINE;", line)
            for line in text.splitlines()]  # fmt: skip


def test_same_start_and_stop_lines(tmp_path: Path) -> None:
    asyncio_lines = _lines(tmp_path, "asyncio")
    threaded_lines = _lines(tmp_path, "threaded")
    assert asyncio_lines == threaded_lines
    assert asyncio_lines == [
        "INFO: Tether running on http://127.0.0.1:PORT with voiceapp:app (ENGINE; Press CTRL+C "
        "to quit)",
        "INFO: SIGTERM received: shutting down",
        "INFO: a second signal forces the exit",
        "INFO: waiting for 1 connection(s) to finish",
        f"INFO: {STOPPED}",
    ]


@pytest.mark.parametrize("server", SERVERS)
def test_start_line_names_the_engine(tmp_path: Path, server: str) -> None:
    folder = tmp_path
    (folder / "voiceapp.py").write_text(ASGI_APP if server == "asyncio" else WSGI_APP)
    port = free_port()
    module, *rest = SERVERS[server]
    proc = spawn(module, folder, *rest, "--port", str(port))
    with reaped(proc):
        log = LogLines(proc)
        log.wait_for(RUNNING)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    engine = "(ASGI, asyncio;" if server == "asyncio" else "(WSGI, 8 threads;"
    assert f"{RUNNING} http://127.0.0.1:{port} with voiceapp:app {engine}" in log.text
