"""The README's quick starts, run as written: the example apps shown there are the files in
examples/, and the commands serve them (a Starlette app under ``tether serve``, a Flask app
under ``tether-threaded``) from the repository root."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.processes import free_port, read_until

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SECTION = README.split("## Quick start: your own app", 1)[1].split("\n## ", 1)[0]


def _code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", SECTION, re.S)


def test_the_readme_shows_the_example_files() -> None:
    shown = _code_blocks("python")
    for name, block in zip(("starlette_app.py", "flask_app.py"), shown, strict=True):
        source = (ROOT / "examples" / name).read_text()
        body = source.split('"""\n', 2)[-1]  # without the module docstring
        body = re.sub(r"  # type: ignore\[[a-z-]+\]", "", body)
        assert body.strip() == block.strip(), name


def _command(line: str, port: int) -> list[str]:
    """The README's command with our port, run with this interpreter's console script."""
    words = line.split("#", maxsplit=1)[0].split()
    words[words.index("--port") + 1] = str(port)
    script = Path(sys.executable).parent / words[0]
    if script.exists():
        return [str(script), *words[1:]]
    module = {"tether": "tether_asyncio", "tether-threaded": "tether_threaded"}[words[0]]
    return [sys.executable, "-m", module, *words[1:]]


@pytest.mark.parametrize("which", ["tether serve", "tether-threaded"])
def test_the_quick_start_commands_serve_the_examples(which: str) -> None:
    lines = [
        line
        for block in _code_blocks("sh")
        for line in block.splitlines()
        if line.startswith(which + " examples.")
    ]
    assert len(lines) == 1
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        _command(lines[0], port),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        read_until(proc, f":{port}")  # the start-up line names the address it serves
        response = httpx.get(f"http://127.0.0.1:{port}/?name=you", timeout=10)
        assert response.status_code == 200
        assert response.json() == {"hello": "you"}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
