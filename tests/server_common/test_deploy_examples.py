"""The deployment examples are tested, not just written: examples/systemd/ (a unit and its
socket) and examples/Dockerfile. Their command lines are parsed by the real ``tether`` parser,
their timeouts checked against each other, and the unit's ExecStart is run the way systemd
would run it (socket activation, NOTIFY_SOCKET, a watchdog), with only the app and the address
swapped for the test's."""

from __future__ import annotations

import configparser
import json
import re
import shlex
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.processes import SLOW_APP, reaped, spawn
from tests.server_common.test_systemd_processes import LAUNCHER, _message
from tether_asyncio._cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "examples" / "systemd"


def _unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((SYSTEMD / name).read_text())
    return parser


def _serve_args(words: list[str]) -> object:
    assert Path(words[0]).name == "tether" and words[1] == "serve"
    return build_parser().parse_args(words[1:])


def test_the_unit_and_socket_agree_with_the_server() -> None:
    service = _unit("tether.service")["Service"]
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["KillSignal"] == "SIGTERM"
    args = _serve_args(shlex.split(service["ExecStart"]))
    grace = args.timeout_graceful_shutdown  # type: ignore[attr-defined]
    assert int(service["TimeoutStopSec"]) > grace, "systemd would SIGKILL during the drain"
    assert args.workers > 1  # type: ignore[attr-defined]
    sock = _unit("tether.socket")["Socket"]
    assert re.fullmatch(r"[\d.]+:\d+", sock["ListenStream"])
    assert _unit("tether.service")["Unit"]["Requires"] == "tether.socket"


def test_the_unit_runs_as_systemd_would_run_it(tmp_path: Path) -> None:
    """ExecStart with the socket at fd 3, NOTIFY_SOCKET and WATCHDOG_USEC: READY once serving,
    watchdog pings, ExecReload's SIGHUP reloads, KillSignal stops with status 0."""
    service = _unit("tether.service")["Service"]
    words = shlex.split(service["ExecStart"])
    (tmp_path / "activate.py").write_text(LAUNCHER)
    (tmp_path / "slowapp.py").write_text(SLOW_APP)
    words[2] = "slowapp:app"  # the test's app instead of myproject.main:app
    manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    manager.bind(str(tmp_path / "notify.sock"))
    manager.settimeout(30)
    listener = socket.create_server(("127.0.0.1", 0))
    env = {"NOTIFY_SOCKET": manager.getsockname(), "WATCHDOG_USEC": "2000000"}
    proc = spawn(
        "activate",
        tmp_path,
        str(listener.fileno()),
        "tether_asyncio",
        *words[1:],
        env=env,
        pass_fds=(listener.fileno(),),
    )
    listener.close()
    with reaped(proc), manager:
        messages: list[dict[str, str]] = []

        def until(field: str) -> dict[str, str]:
            while not messages or field not in messages[-1]:
                messages.append(_message(manager))
            return messages[-1]

        assert until("READY")["MAINPID"] == str(proc.pid)
        until("WATCHDOG")  # at half of WATCHDOG_USEC, from the supervisor
        proc.send_signal(signal.SIGHUP)  # ExecReload
        until("RELOADING")
        assert until("READY")["STATUS"].startswith("reloaded")
        proc.send_signal(signal.SIGTERM)  # KillSignal
        until("STOPPING")
        assert proc.wait(30) == 0


def _dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "examples" / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_the_dockerfile_runs_a_graceful_tether() -> None:
    instructions = _dockerfile()
    assert ("STOPSIGNAL", "SIGTERM") in instructions
    for keyword, rest in instructions:
        if keyword == "COPY":
            source = rest.split()[0]
            assert (ROOT / source).exists(), source
    cmd = json.loads(next(rest for keyword, rest in instructions if keyword == "CMD"))
    args = _serve_args(cmd)
    assert args.host == "0.0.0.0"  # type: ignore[attr-defined]
    assert args.timeout_graceful_shutdown < 30  # type: ignore[attr-defined]  # < docker's grace


def test_the_docker_image_builds() -> None:
    docker = shutil.which("docker")
    if (
        docker is None
        or subprocess.run([docker, "info"], check=False, capture_output=True).returncode
    ):
        pytest.skip("no Docker daemon on this machine")
    result = subprocess.run(
        [docker, "build", "-q", "-f", "examples/Dockerfile", "-t", "tether-example", "."],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
