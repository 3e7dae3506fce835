"""Reading conformance-vector files: the JSON documents of a schema, and their text as bytes.

Shared by :mod:`tether.conformance` (request vectors) and its client half
(response vectors).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any


def b(text: str) -> bytes:
    return text.encode("latin-1")


def fields(pairs: Iterable[Sequence[str]]) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((b(name), b(value)) for name, value in pairs)


def documents(directory: str | Path | None, schema: str) -> list[dict[str, Any]]:
    """The JSON documents of ``schema`` in ``directory`` (default: the bundled http1 set)."""
    docs = []
    if directory is None:
        base = resources.files("tether") / "vectors" / "http1"
        texts = [
            entry.read_text("utf-8")
            for entry in sorted(base.iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".json")
        ]
    else:
        texts = [path.read_text("utf-8") for path in sorted(Path(directory).glob("*.json"))]
    for text in texts:
        doc = json.loads(text)
        if doc.get("schema") == schema:
            docs.append(doc)
    return docs
