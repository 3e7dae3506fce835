"""``examples/test_my_asgi_app.py``, the in-process fuzz test a user points at their own ASGI
app: it passes for a correct app and fails, naming the bug, for apps with planted bugs."""

from __future__ import annotations

import subprocess

import pytest

from tests import processes


def run_example(app: str, *plugins: str) -> subprocess.CompletedProcess[str]:
    env = {"TETHER_TEST_APP": app, "TETHER_TEST_EXAMPLES": "100"}
    return processes.run_example("test_my_asgi_app.py", env, *plugins)


def test_passes_for_a_correct_app() -> None:
    out = run_example("tests.examples.asgi_samples:correct")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "1 passed" in out.stdout


@pytest.mark.parametrize(
    ("app", "symptom"),
    [
        ("naive_query", "ValueError"),
        ("ascii_headers", "the application answered 500"),
    ],
)
def test_fails_for_a_planted_bug(app: str, symptom: str) -> None:
    out = run_example(f"tests.examples.asgi_samples:{app}", "tests.conform.no_shrink")
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-2000:]
    assert symptom in out.stdout, out.stdout[-3000:]
