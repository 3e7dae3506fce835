"""The public names type the way a user's ``mypy --strict`` needs (issue 18, point 7)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_need_data_and_paused_narrow_under_mypy_strict(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path),
            str(Path(__file__).parent / "typed" / "narrowing.py"),
        ],
        env={**os.environ, "MYPYPATH": str(ROOT / "packages" / "core" / "src")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
