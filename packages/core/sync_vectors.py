"""Copy the repository's conformance vectors (``spec/``) into the package as data.

``spec/`` is the source of truth; ``src/tether/vectors/`` is the copy that ships in the
wheel (an sdist or wheel build cannot reach outside ``packages/core``).
``tests/conform/test_bundled_vectors.py`` fails when the two differ; run this to sync::

    python packages/core/sync_vectors.py
"""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPEC = HERE.parent.parent / "spec"
BUNDLED = HERE / "src" / "tether" / "vectors"


def spec_files() -> dict[str, bytes]:
    """``{"area/name.json": bytes}`` for every vector file of ``spec/``."""
    return {str(p.relative_to(SPEC)): p.read_bytes() for p in sorted(SPEC.glob("*/*.json"))}


def bundled_files() -> dict[str, bytes]:
    """The same for the copy inside the package."""
    return {str(p.relative_to(BUNDLED)): p.read_bytes() for p in sorted(BUNDLED.glob("*/*.json"))}


def sync() -> None:
    """Make the bundled copy equal to ``spec/``."""
    if BUNDLED.exists():
        shutil.rmtree(BUNDLED)
    for name, data in spec_files().items():
        target = BUNDLED / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


if __name__ == "__main__":
    sync()
    print(f"{len(spec_files())} vector files copied to {BUNDLED}")
