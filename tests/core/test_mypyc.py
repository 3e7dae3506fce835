"""The core compiles with mypyc, and the compiled module serves requests and frames.

Compiling is a check, not a distribution change: ``tether`` is copied to a
temporary directory, compiled there with the mypyc that ships with mypy, and
a smoke run imports the compiled modules (not this checkout's sources) and
drives every spec vector and a WebSocket message through them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import SPEC

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "packages" / "core" / "src" / "tether"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

# Modules left interpreted: their exception classes set ``status_hint``/``close_code`` as class
# attributes that subclasses override, and a native (compiled) subclass of Exception never
# sees such class-level defaults under mypyc (the attribute is missing at run time). Moving
# the defaults to ClassVars across these modules is what remains for a whole-package build.
INTERPRETED = {
    "tether/errors.py",
    "tether/websocket/errors.py",
    "tether/coding.py",
    "tether/conditional.py",
    "tether/httpdate.py",
    "tether/multipart.py",
    "tether/ranges.py",
    "tether/urlencoded.py",
}

SMOKE = r"""
import sys
from pathlib import Path

import tether.http1._connection, tether.http1._receive, tether.websocket.connection
for module in (tether.http1._connection, tether.http1._receive, tether.websocket.connection):
    assert module.__file__.endswith(".so"), module.__file__

from tether.conformance import judge_core, load_vectors, run_on_core
from tether.http1 import Data, EndOfMessage, Response, ServerConnection
from tether import websocket as ws

vectors = load_vectors(Path(sys.argv[1]))
failures = [v.id for v in vectors if judge_core(v, run_on_core(v)) != []]
assert not failures, failures

conn = ServerConnection(now=0.0)
conn.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"3\r\nabc\r\n0\r\n\r\n", now=0.0)
events = [conn.next_event(now=0.0) for _ in range(3)]
assert events[1] == Data(b"abc") and events[2] == EndOfMessage(), events
wire = conn.send(Response(200, [(b"content-length", b"2")])) + conn.send(Data(b"ok"))
assert wire.endswith(b"\r\n\r\nok"), wire

server = ws.Connection(ws.Role.SERVER, now=0.0)
server.receive_data(bytes([0x81, 0x82, 1, 2, 3, 4]) + bytes([ord("h") ^ 1, ord("i") ^ 2]), 0.0)
assert list(server.events()) == [ws.Text("hi")]
print("smoke ok", len(vectors))
"""


def _c_compiler() -> str | None:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) or shutil.which("cc") or shutil.which("gcc")


def test_the_core_compiles_with_mypyc_and_runs(tmp_path: Path) -> None:
    if _c_compiler() is None:
        pytest.skip("no C compiler")
    pytest.importorskip("mypyc")
    shutil.copytree(CORE, tmp_path / "tether", ignore=shutil.ignore_patterns("__pycache__"))
    env = {
        **os.environ,
        # -O0: this is a check that the core compiles and runs, not a build to ship.
        # -U__unix: gcc predefines ``__unix`` in GNU C mode, and mypyc names the C member of
        # an attribute ``_unix`` (tether.serving.TrustedProxies) ``__unix``.
        "CFLAGS": "-O0 -U__unix",
        "PYTHONPATH": str(tmp_path),
        "MYPYPATH": "",
    }
    sources = sorted(
        path.relative_to(tmp_path).as_posix() for path in (tmp_path / "tether").rglob("*.py")
    )
    compiled = [source for source in sources if source not in INTERPRETED]
    assert "tether/http1/_connection.py" in compiled and len(compiled) >= 20
    build = subprocess.run(
        [sys.executable, "-m", "mypyc", *compiled],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    assert list((tmp_path / "tether" / "http1").glob("_connection.*.so"))
    smoke = subprocess.run(
        [sys.executable, "-c", SMOKE, str(SPEC / "http1")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert "smoke ok" in smoke.stdout
