"""Memory per idle keep-alive connection (issue 12, item 11): thousands of clients that each
made one request and then stay connected must cost tether serve no more than uvicorn with
httptools, measured in the same run, and tether-threaded at most 3 KB. The measuring code is
bench/idle_memory.py's (server RSS before and after, per connection)."""

from __future__ import annotations

import importlib.util
import resource
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COUNT = 2000

pytestmark = pytest.mark.timeout(240)


def _bench() -> object:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        spec = importlib.util.spec_from_file_location(
            "idle_memory", ROOT / "bench" / "idle_memory.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "bench"))


def test_idle_keep_alive_connections_cost_no_more_than_uvicorn(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < COUNT + 200:
        pytest.skip(f"only {hard} file descriptors allowed")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, COUNT + 200), hard))
    bench = _bench()
    (tmp_path / "idle_app.py").write_text(bench.APP)  # type: ignore[attr-defined]
    per: dict[str, float] = {}
    for name in ("tether-asyncio", "uvicorn-httptools", "tether-threaded"):
        port = bench.free_port()  # type: ignore[attr-defined]
        command = bench.commands(port, str(tmp_path))[name]  # type: ignore[attr-defined]
        per[name] = bench.measure(name, command, port, COUNT)  # type: ignore[attr-defined]
    # A 5% allowance: the allocator's pages make single runs move by a few percent.
    assert per["tether-asyncio"] <= per["uvicorn-httptools"] * 1.05, per
    assert per["tether-threaded"] <= 3.0, per
