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

# Every module of the core is compiled: nothing is left interpreted. (An exclusion would need
# a cited mypyc limitation; the last one, class-body defaults of ``status_hint`` on Exception
# subclasses, went away when those became ClassVars in tether/errors.py.)

SMOKE = r"""
import sys
from pathlib import Path

import importlib, pkgutil
import tether
names = [info.name for info in pkgutil.walk_packages(tether.__path__, "tether.")]
interpreted = [name for name in ["tether", *names]
               if not importlib.import_module(name).__file__.endswith(".so")]
assert not interpreted and len(names) >= 30, (interpreted, names)

# The status and close code belong to each error class, compiled or not.
from tether import errors
from tether.coding import UnsupportedContentCoding
from tether.websocket.errors import MessageTooBig, UpgradeRequired
hints = [(errors.ProtocolError("x").status_hint, errors.ProtocolError("x").close_code),
         (errors.LocalProtocolError("x").status_hint, errors.LocalProtocolError("x").close_code),
         (errors.HeadTooLarge("x").status_hint, UnsupportedContentCoding("x").status_hint),
         (UpgradeRequired("x").status_hint, MessageTooBig("x").close_code)]
assert hints == [(400, 1002), (500, 1011), (431, 415), (426, 1009)], hints

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
        # Optimisation level 0: this is a check that the core compiles and runs, not a build
        # to ship. mypyc puts its own -O3 after CFLAGS, so the level is set through mypyc.
        # -U__unix: gcc predefines ``__unix`` in GNU C mode, and mypyc names the C member of
        # an attribute ``_unix`` (tether.serving.TrustedProxies) ``__unix``.
        "MYPYC_OPT_LEVEL": "0",
        "MYPYC_DEBUG_LEVEL": "0",
        "CFLAGS": "-U__unix",
        "PYTHONPATH": str(tmp_path),
        "MYPYPATH": "",
    }
    sources = sorted(
        path.relative_to(tmp_path).as_posix() for path in (tmp_path / "tether").rglob("*.py")
    )
    assert "tether/http1/_connection.py" in sources and len(sources) >= 30
    build = subprocess.run(
        [sys.executable, "-m", "mypyc", *sources],
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
