"""Shared helpers for the WebSocket tests: the repository root on sys.path, Hypothesis profiles."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[2]
# tests/autobahn.py and examples/ are imported as modules of the repository.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

settings.register_profile(
    "websocket",
    max_examples=int(os.environ.get("TETHER_WS_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
