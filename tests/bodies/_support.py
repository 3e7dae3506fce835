"""Shared helpers for the body toolkit tests: where the spec vectors and captures live."""

from __future__ import annotations

import json
import pathlib
from typing import Any

ROOT = pathlib.Path(__file__).parents[2]
SPEC = ROOT / "spec" / "bodies"
DATA = pathlib.Path(__file__).parent / "data"


def load_spec(name: str) -> list[dict[str, Any]]:
    """The cases of spec/bodies/<name>.json."""
    cases: list[dict[str, Any]] = json.loads((SPEC / name).read_text("utf-8"))["cases"]
    return cases
