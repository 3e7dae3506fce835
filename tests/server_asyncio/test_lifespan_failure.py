"""Lifespan startup failures through the ``tether serve`` command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.processes import spawn

pytestmark = pytest.mark.timeout(60)

#: Starlette's shape: report the failure, then re-raise what caused it.
FAILS_THEN_RAISES = """
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        try:
            raise ConnectionError("database unreachable")
        except ConnectionError as exc:
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            raise
"""


def test_exception_after_startup_failed_is_one_startup_failure(tmp_path: Path) -> None:
    (tmp_path / "failing.py").write_text(FAILS_THEN_RAISES)
    proc = spawn("tether_asyncio", tmp_path, "serve", "failing:app", "--port", "0")
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3
    assert "shutdown" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("ERROR")]
    assert errors == ["ERROR: application startup failed: database unreachable"], err
    assert "Traceback" not in err
