"""The conformance vectors ship with ``tether``: the bundled copy equals ``spec/``, and a
built wheel (not only an editable checkout) loads them by default with a version string."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, SPEC
from tether.conformance import load_response_vectors, load_vectors, vectors_version

_spec = importlib.util.spec_from_file_location(
    "sync_vectors", ROOT / "packages" / "core" / "sync_vectors.py"
)
assert _spec is not None and _spec.loader is not None
sync_vectors = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sync_vectors)


def test_bundled_copy_equals_spec() -> None:
    spec, bundled = sync_vectors.spec_files(), sync_vectors.bundled_files()
    assert sorted(spec) == sorted(bundled), "run: python packages/core/sync_vectors.py"
    drifted = [name for name in spec if spec[name] != bundled[name]]
    assert drifted == [], f"{drifted} differ from spec/: run python packages/core/sync_vectors.py"


def test_default_load_is_the_bundled_set() -> None:
    assert [v.id for v in load_vectors()] == [v.id for v in load_vectors(SPEC / "http1")]
    assert [v.id for v in load_response_vectors()] == [
        v.id for v in load_response_vectors(SPEC / "http1")
    ]
    version = vectors_version()
    assert version.startswith("0.1.0+") and len(version.split("+")[1]) == 12


CHECK = """
import sys, tether, tether.conformance as c
assert tether.__file__.startswith(sys.argv[1]), tether.__file__
requests, responses = c.load_vectors(), c.load_response_vectors()
print(len(requests), len(responses), c.vectors_version())
"""


def test_from_a_built_wheel(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            str(ROOT / "packages" / "core"),
            "-w",
            str(tmp_path / "dist"),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("tether-*.whl")
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # -S: no site-packages (so no editable install of this checkout); the path is only the wheel's.
    out = subprocess.run(
        [sys.executable, "-S", "-c", CHECK, str(target)],
        env={"PYTHONPATH": str(target)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    count, response_count, version = out.stdout.split()
    assert int(count) == len(load_vectors()) and int(response_count) == len(load_response_vectors())
    assert version == vectors_version()
