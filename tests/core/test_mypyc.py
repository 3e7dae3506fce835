"""The core builds compiled by mypyc when asked, and the compiled build serves requests.

``packages/core/setup.py`` compiles the core when pip builds a wheel with ``TETHER_COMPILE=1``
(opt-in; the rest of the suite runs the editable pure-Python install). Here pip builds that
wheel the way a user's ``TETHER_COMPILE=1 pip install ./packages/core`` does (at mypyc's -O0:
this checks the build, it does not ship it), and a smoke run imports the wheel's compiled
modules (not this checkout's sources) and drives every spec vector and a WebSocket message
through them. Without ``TETHER_COMPILE`` the wheel holds no compiled module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import SPEC

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "packages" / "core"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

# Every module a request runs through is compiled; only the test-time modules (Hypothesis
# strategies, the conformance runner) stay interpreted, as setup.py lists them. (Another
# exclusion would need a cited mypyc limitation; the last one, class-body defaults of
# ``status_hint`` on Exception subclasses, went away when those became ClassVars.)
INTERPRETED = {
    "tether._conformance_client",
    "tether._vector_files",
    "tether.conformance",
    "tether.strategies",
    "tether.strategies_invalid",
    "tether.strategies_ws",
}

SMOKE = r"""
import sys
from pathlib import Path

import importlib, pkgutil
import tether
names = [info.name for info in pkgutil.walk_packages(tether.__path__, "tether.")]
interpreted = {name for name in ["tether", *names]
               if not importlib.import_module(name).__file__.endswith(".so")}
assert interpreted == set(sys.argv[2].split(",")) and len(names) >= 30, (interpreted, names)

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


def _wheel(tmp_path: Path, **env: str) -> Path:
    """Build the core's wheel as ``pip install ./packages/core`` would, and unpack it."""
    source = tmp_path / "core"  # a copy: no build tree shared with another build
    shutil.copytree(
        CORE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(wheels), str(source)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    (wheel,) = wheels.glob("tether-*.whl")
    unpacked = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
    return unpacked


# Tests of the request path, run again on the compiled build: the compiled core checks the
# declared types of what it is given, where pure Python takes anything that quacks, so
# behaviour at the boundary (what applications hand a server) is checked in both builds.
# Real sockets and real frameworks (Starlette, Flask); Autobahn is left to the pure run. (The
# multipart parser's events were once made by object.__new__, which a compiled class refuses.)
ON_THE_COMPILED_BUILD = [
    "tests/core/test_field_pairs.py",
    "tests/core/test_respond_fields.py",
    "tests/bodies/test_multipart.py",
    "tests/server_asyncio/test_http.py",
    "tests/server_asyncio/test_response_cycle.py",
    "tests/server_asyncio/test_starlette.py",
    "tests/server_asyncio/test_websocket.py",
    "tests/server_threaded/test_wsgi.py",
    "tests/server_threaded/test_response_cycle.py",
    "tests/server_threaded/test_flask.py",
    "tests/server_threaded/test_websocket.py",
]


@pytest.fixture(scope="module")
def compiled_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if _c_compiler() is None:
        pytest.skip("no C compiler")
    tmp_path = tmp_path_factory.mktemp("compiled")
    return _wheel(tmp_path, TETHER_COMPILE="1", MYPYC_OPT_LEVEL="0", MYPYC_DEBUG_LEVEL="0")


def test_pip_builds_the_core_compiled_when_asked_and_it_runs(compiled_site: Path) -> None:
    site = compiled_site
    assert list((site / "tether" / "http1").glob("_connection.*.so"))
    assert list(site.glob("tether__mypyc.*.so")), "one shared library, named for the package"
    smoke = subprocess.run(
        [sys.executable, "-c", SMOKE, str(SPEC / "http1"), ",".join(sorted(INTERPRETED))],
        cwd=site.parent,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert "smoke ok" in smoke.stdout


def test_the_request_path_tests_pass_on_the_compiled_build(compiled_site: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-k", "not autobahn",
         *ON_THE_COMPILED_BUILD],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(compiled_site), "TETHER_EXPECT_COMPILED": "1"},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]


def test_the_default_build_is_pure_python(tmp_path: Path) -> None:
    site = _wheel(tmp_path)
    assert (site / "tether" / "http1" / "_connection.py").is_file()
    assert not list(site.rglob("*.so"))
