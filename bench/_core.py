"""Which build of the core a benchmark runs: pure Python (the default install) or compiled.

``pip install ./packages/core`` installs the core in pure Python, as the tests run it; that is
the benchmarks' default. ``TETHER_COMPILE=1 pip install ./packages/core`` builds it compiled by
mypyc (``packages/core/setup.py`` says why that is opt-in); ``--core compiled`` measures that.

``use("compiled")`` builds that wheel exactly as pip does (once per state of the core's sources,
cached in ``~/.cache/tether-bench/``), then re-runs the benchmark with the wheel's contents first on
``PYTHONPATH``, so that the benchmark and every server it starts import the compiled core.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "packages" / "core"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tether-bench"
CHOICES = ("compiled", "pure")
HELP = "the core's build: pure (the default install) or compiled (TETHER_COMPILE=1 pip install)"


def _source_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted([CORE / "setup.py", CORE / "pyproject.toml", *CORE.glob("src/**/*.py")]):
        digest.update(path.relative_to(CORE).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def compiled_core() -> Path:
    """A directory holding the core as ``TETHER_COMPILE=1 pip install`` installs it."""
    target = CACHE / f"core-{_source_hash()}-py{sys.version_info[0]}{sys.version_info[1]}"
    if (target / "tether").is_dir():
        return target
    print("building the compiled core (TETHER_COMPILE=1 pip wheel; a few minutes, once)",
          file=sys.stderr, flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, str(CORE)],
            check=True,
            env={**os.environ, "TETHER_COMPILE": "1"},
        )
        (wheel,) = Path(wheels).glob("tether-*.whl")
        partial = target.with_name(target.name + ".partial")
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(partial)
        partial.rename(target)
    return target


def use(kind: str) -> str:
    """Make this process (re-running it if need be) and its children import the ``kind`` core;
    return a label for the benchmark's output."""
    if kind == "pure":
        compiled = os.environ.pop("TETHER_BENCH_CORE", None)
        if compiled:  # undo a compiled parent's path
            paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
            os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p != compiled)
            os.execv(sys.executable, [sys.executable, *sys.argv])
        return "core: pure Python (the default install)"
    where = str(compiled_core())
    if os.environ.get("TETHER_BENCH_CORE") != where:
        os.environ["TETHER_BENCH_CORE"] = where
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [where, *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        os.execv(sys.executable, [sys.executable, *sys.argv])
    import tether.http1._connection as probe

    if not probe.__file__ or probe.__file__.endswith(".py"):
        return "core: pure Python (compiling failed: no C compiler?)"
    return "core: compiled by mypyc (TETHER_COMPILE=1 pip install)"
