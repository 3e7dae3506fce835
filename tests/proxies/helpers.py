"""Run Tether processes behind a real nginx or HAProxy, configured from examples/deploy/.

The proxy's configuration is the template in ``examples/deploy/`` with its placeholders filled
in (and nothing else changed, unless a test asks for the RFC 7239 variant the template carries
in comments), so the examples are what the tests run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.processes import ROOT, LogLines, free_port, reaped, wait_until

DEPLOY = ROOT / "examples" / "deploy"
HERE = Path(__file__).resolve().parent
PROXIES = ("nginx", "haproxy")
SERVERS = ("asyncio", "threaded")
_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")
#: This checkout's packages, the shared server package included.
SOURCES = [
    ROOT / "packages" / name / "src"
    for name in ("core", "server-common", "server-asyncio", "server-threaded")
]


def binary(name: str) -> str:
    """The path of ``name`` (nginx, haproxy), or a skip of the test when it is not installed."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.skip(f"{name} is not installed (apt-get install -y {name})")
    return found


def listening(port: int, timeout: float = 30.0) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port`` within ``timeout``."""

    def accepts() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    return wait_until(accepts, timeout)


def tether(server: str, port: int, run_dir: Path, *args: str) -> subprocess.Popen[str]:
    """A Tether process (``asyncio``: tether serve; ``threaded``: tether-threaded) serving
    :mod:`tests.proxies.proxy_backend` on ``port``, recording requests in ``run_dir``."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(map(str, [*SOURCES, ROOT])),
        TETHER_PROXY_RECORD=str(run_dir / f"record-{port}.jsonl"),
        TETHER_PROXY_DIR=str(run_dir),
    )
    common = ("--app-dir", str(HERE), "--port", str(port), "--no-access-log", *args)
    if server == "asyncio":
        command = ["tether_asyncio", "serve", "proxy_backend:asgi_app", "--lifespan", "on"]
    else:
        command = ["tether_threaded", "proxy_backend:wsgi_app", "--threads", "8"]
    return subprocess.Popen(
        [sys.executable, "-m", *command, *common],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def certificate(directory: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 in ``directory``: ``cert.pem``, ``key.pem`` and
    ``both.pem`` (HAProxy's form); returns ``cert.pem``, or skips without openssl."""
    exe = binary("openssl")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [exe, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    (directory / "both.pem").write_text(cert.read_text() + key.read_text())
    return cert


def render(
    proxy: str, ports: tuple[int, int], servers: list[int], run_dir: Path, rfc7239: bool
) -> str:
    """The example configuration of ``proxy`` with its placeholders filled in.

    ``rfc7239``: the commented ``#rfc7239:`` lines are enabled and the ``# x-forwarded`` ones
    disabled. Run as root, nginx's workers would switch to "nobody", who cannot write to the
    test's directory: they stay the current user instead.
    """
    name = "nginx.conf" if proxy == "nginx" else "haproxy.cfg"
    text = (DEPLOY / name).read_text()
    if proxy == "nginx":
        lines = [f"server 127.0.0.1:{port};" for port in servers]
        if os.geteuid() == 0:
            text = "user root;\n" + text
    else:
        lines = [f"server t{n} 127.0.0.1:{port}" for n, port in enumerate(servers)]
    values = {
        "SERVERS": "\n        ".join(lines),
        "LISTEN": f"127.0.0.1:{ports[0]}",
        "TLS_LISTEN": f"127.0.0.1:{ports[1]}",
        "RUN_DIR": str(run_dir),
        "CERT": str(run_dir / "cert.pem"),
        "KEY": str(run_dir / "key.pem"),
        "PEM": str(run_dir / "both.pem"),
    }
    # The comments name the placeholders: only the directives are filled in.
    text = "".join(
        line if line.lstrip().startswith("#") else _PLACEHOLDER.sub(lambda m: values[m[1]], line)
        for line in text.splitlines(keepends=True)
    )
    if rfc7239:
        text = "".join(
            "#" + line if line.rstrip().endswith("# x-forwarded") else line
            for line in text.replace("#rfc7239: ", "").splitlines(keepends=True)
        )
    return text


@dataclass
class Stack:
    """A proxy on ``port`` (and HTTPS on ``tls_port``) in front of Tether processes on
    ``backends``."""

    proxy: str
    server: str
    port: int
    tls_port: int
    backends: list[int]
    tether_dir: Path
    proxy_dir: Path
    proxy_log: LogLines

    @property
    def url(self) -> str:
        """The proxy's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        """The proxy's HTTPS base URL (its certificate: ``proxy_dir / "cert.pem"``)."""
        return f"https://127.0.0.1:{self.tls_port}"

    def records(self, since: dict[str, int] | None = None) -> list[dict[str, Any]]:
        """Every request the backends' app has received so far (after ``since``, a
        :meth:`mark`)."""
        found: list[dict[str, Any]] = []
        for path in sorted(self.tether_dir.glob("record-*.jsonl")):
            lines = path.read_text().splitlines()[(since or {}).get(path.name, 0) :]
            found += [json.loads(line) for line in lines if line]
        return found

    def mark(self) -> dict[str, int]:
        """How many requests each backend has recorded so far (for :meth:`records`)."""
        return {
            path.name: len(path.read_text().splitlines())
            for path in self.tether_dir.glob("record-*.jsonl")
        }

    def access_log(self) -> str:
        """The requests the proxy saw: nginx's access log, or what HAProxy logged."""
        path = self.proxy_dir / "access.log"
        return path.read_text() if path.exists() else self.proxy_log.text


@contextlib.contextmanager
def proxy_process(
    proxy: str,
    ports: tuple[int, int],
    servers: list[int],
    run_dir: Path,
    rfc7239: bool = False,
) -> Iterator[LogLines]:
    """nginx or HAProxy on ``ports`` (HTTP, HTTPS) in front of ``servers``, for the block:
    what it writes on stderr."""
    exe = binary(proxy)
    run_dir.mkdir(parents=True, exist_ok=True)
    certificate(run_dir)
    conf = run_dir / ("nginx.conf" if proxy == "nginx" else "haproxy.cfg")
    conf.write_text(render(proxy, ports, servers, run_dir, rfc7239))
    if proxy == "nginx":
        command = [exe, "-p", str(run_dir), "-c", str(conf), "-g", "daemon off;"]
    else:
        command = [exe, "-f", str(conf), "-db"]
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=run_dir
    )
    with reaped(proc):
        log = LogLines(proc)
        if not (listening(ports[0], 15) and listening(ports[1], 5)):
            proc.kill()
            raise AssertionError(f"{proxy} did not start: {log.finish()}")
        yield log
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def tethers(
    server: str, run_dir: Path, count: int = 2, args: tuple[str, ...] = ()
) -> Iterator[list[int]]:
    """``count`` Tether processes of ``server``, for the block: their ports."""
    run_dir.mkdir(parents=True, exist_ok=True)
    ports = [free_port() for _ in range(count)]
    with contextlib.ExitStack() as exits:
        for port in ports:
            proc = exits.enter_context(reaped(tether(server, port, run_dir, *args)))
            log = LogLines(proc)
            exits.callback(_no_traceback, proc, log)
        for port in ports:
            assert listening(port), f"Tether on {port} did not start"
        yield ports


def _no_traceback(proc: subprocess.Popen[str], log: LogLines) -> None:
    """Stop ``proc`` gracefully; what it logged must hold no traceback."""
    if proc.poll() is None:
        proc.terminate()
        proc.wait(20)
    text = log.finish()
    assert "Traceback" not in text, text


@contextlib.contextmanager
def stack(proxy: str, server: str, run_dir: Path, rfc7239: bool = False) -> Iterator[Stack]:
    """Two Tether processes of ``server`` behind ``proxy``, for the block."""
    binary(proxy)
    args = ("--forwarded-style", "rfc7239") if rfc7239 else ()
    with tethers(server, run_dir / "tether", args=args) as ports:
        listen = (free_port(), free_port())
        with proxy_process(proxy, listen, ports, run_dir / proxy, rfc7239) as log:
            yield Stack(proxy, server, *listen, ports, run_dir / "tether", run_dir / proxy, log)
