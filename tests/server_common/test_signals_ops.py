"""Operations signals on both servers' real processes: SIGUSR1 reopens log files (alone and
under ``--workers``), and a lone server tells systemd ``STOPPING=1`` when it shuts down."""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path

import httpx
import pytest

from tests.processes import LogLines, free_port, reaped, spawn, wait_until
from tests.server_common.test_systemd_processes import WSGI_APP
from tests.server_common.test_tagging import ASGI_APP

SERVERS = {
    "asyncio": ("tether_asyncio", "serve", "app_asgi:app"),
    "threaded": ("tether_threaded", "app_wsgi:app"),
}


def _write_apps(where: Path) -> None:
    (where / "app_asgi.py").write_text(ASGI_APP)
    (where / "app_wsgi.py").write_text(WSGI_APP)


def _log_config(where: Path, access: Path) -> Path:
    """A --log-config sending access lines to the file ``access`` (and nowhere else)."""
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(message)s"}},
        "handlers": {
            "file": {"class": "logging.FileHandler", "filename": str(access), "formatter": "plain"}
        },
        "loggers": {"tether.access": {"handlers": ["file"], "level": "INFO", "propagate": False}},
    }
    path = where / "logging.json"
    path.write_text(json.dumps(config))
    return path


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("workers", [1, 2])
def test_sigusr1_reopens_log_files(tmp_path: Path, server: str, workers: int) -> None:
    _write_apps(tmp_path)
    access = tmp_path / "access.log"
    config = _log_config(tmp_path, access)
    port = free_port()
    module, *rest = SERVERS[server]
    proc = spawn(module, tmp_path, *rest, "--port", str(port), "--log-config", str(config),
                 "--workers", str(workers))  # fmt: skip
    with reaped(proc):
        log = LogLines(proc)
        log.wait_for(f":{port}", count=workers)
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/before", timeout=10).status_code == 200
        assert wait_until(lambda: access.exists() and "/before" in access.read_text(), 10)
        access.rename(tmp_path / "access.log.1")  # what logrotate does
        proc.send_signal(signal.SIGUSR1)
        # Each process says when it has reopened: the supervisor and its workers, or the server.
        log.wait_for("log file(s) reopened", count=workers + 1 if workers > 1 else 1)
        for n in range(4):  # under --workers, each worker may take one
            assert httpx.get(f"{url}/after{n}", timeout=10).status_code == 200
        assert wait_until(lambda: access.exists() and access.read_text().count("/after") == 4, 10)
        assert "/before" not in access.read_text()
        assert "/after" not in (tmp_path / "access.log.1").read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.text
    assert "Traceback" not in log.text


@pytest.mark.parametrize("server", SERVERS)
def test_lone_server_says_stopping(tmp_path: Path, server: str) -> None:
    _write_apps(tmp_path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(str(tmp_path / "notify.sock"))
        manager.settimeout(30)
        module, *rest = SERVERS[server]
        port = free_port()
        proc = spawn(module, tmp_path, *rest, "--port", str(port),
                     env={"NOTIFY_SOCKET": manager.getsockname()})  # fmt: skip
        with reaped(proc):
            log = LogLines(proc)
            assert manager.recv(4096).decode().startswith("READY=1\n")
            # An answer: the loop runs, its signal handlers are in place.
            assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
            proc.send_signal(signal.SIGTERM)
            words = manager.recv(4096).decode()
            assert proc.wait(30) == 0, log.text
        assert words == "STOPPING=1"
