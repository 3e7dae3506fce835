"""The repository root on sys.path for the WebSocket tests (tests/autobahn.py, examples/)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# tests/autobahn.py and examples/ are imported as modules of the repository.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
