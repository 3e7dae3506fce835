"""Shared helpers for the body toolkit tests (tether.multipart, urlencoded, ranges, ...)."""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

try:
    import tether  # noqa: F401
except ImportError:  # the core not installed in the venv: use the source tree
    sys.path.insert(0, str(pathlib.Path(__file__).parents[2] / "packages" / "core" / "src"))

ROOT = pathlib.Path(__file__).parents[2]
SPEC = ROOT / "spec" / "bodies"
DATA = pathlib.Path(__file__).parent / "data"


def load_spec(name: str) -> list[dict[str, Any]]:
    """The cases of spec/bodies/<name>.json."""
    cases: list[dict[str, Any]] = json.loads((SPEC / name).read_text("utf-8"))["cases"]
    return cases
