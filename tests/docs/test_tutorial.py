"""Every ```python block of the tutorial runs, page by page, in the order of the page.

The blocks of one page share one namespace (a later block may use what an earlier one
defined), run with the repository root as the working directory and ``examples/`` on
``sys.path``, as the tutorial's first page says. Two kinds of block are not run:

- a block right after an ``<!-- not run: why -->`` line (keep these few: see
  ``MAX_NOT_RUN``);
- a block that only includes source with ``--8<--`` (an excerpt of a file under
  ``examples/``, which has tests of its own; mkdocs checks that the excerpt exists).

Blocks that start servers bind 127.0.0.1 port 0 and stop them before they end: each page
must leave no thread behind.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.processes import wait_until

DOCS = ROOT / "docs"
TUTORIAL = DOCS / "tutorial"
#: The most blocks the whole tutorial may mark as not run.
MAX_NOT_RUN = 6

_FENCE = re.compile(
    r"^(?P<indent> *)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```$", re.M | re.S
)
_NOT_RUN = re.compile(r"<!-- not run: [^>]+-->\s*$")


class Block:
    """One fenced block: its language, its code, its line in the page, whether it runs."""

    def __init__(self, page: Path, match: re.Match[str]) -> None:
        self.page = page
        self.language = (match["info"].split() or [""])[0]
        indent = len(match["indent"])
        self.code = "".join(line[indent:] + "\n" for line in match["body"].splitlines())
        self.line = page.read_text()[: match.start()].count("\n") + 1
        before = page.read_text()[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        self.marked_not_run = bool(_NOT_RUN.search(before))
        self.include_only = all(
            line.strip().startswith("--8<--") for line in self.code.splitlines() if line.strip()
        )

    @property
    def runs(self) -> bool:
        return self.language == "python" and not self.marked_not_run and not self.include_only


def blocks(page: Path) -> list[Block]:
    return [Block(page, match) for match in _FENCE.finditer(page.read_text())]


def tutorial_pages() -> list[Path]:
    """The tutorial's pages in the order of the site's navigation."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    (section,) = [entry["Tutorial"] for entry in config["nav"] if "Tutorial" in entry]
    return [DOCS / next(iter(entry.values())) for entry in section]


@pytest.fixture
def in_repository() -> Iterator[None]:
    cwd = os.getcwd()
    path = list(sys.path)
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        yield
    finally:
        os.chdir(cwd)
        sys.path[:] = path


@pytest.mark.parametrize("page", tutorial_pages(), ids=lambda page: page.stem)
def test_page_runs(page: Path, in_repository: None) -> None:
    threads = set(threading.enumerate())
    namespace: dict[str, object] = {"__name__": f"tutorial_{page.stem.replace('-', '_')}"}
    runnable = [block for block in blocks(page) if block.runs]
    assert runnable, f"{page.name} has no runnable python block"
    for block in runnable:
        # Padded so that a traceback names the page's own line numbers, and shows the line.
        source = "\n" * block.line + block.code
        exec(compile(source, str(page), "exec"), namespace)
    # Servers started by a page were stopped by it (daemon threads included).
    assert wait_until(lambda: set(threading.enumerate()) <= threads, timeout=10), (
        f"{page.name} left threads running: {set(threading.enumerate()) - threads}"
    )


def test_the_tutorial_is_in_the_navigation_in_order() -> None:
    pages = tutorial_pages()
    assert {page.name for page in pages} == {page.name for page in TUTORIAL.glob("*.md")}
    assert [page.stem for page in pages][:3] == ["sans-io", "blocking", "asyncio"]


def test_few_blocks_are_not_run() -> None:
    not_run = [
        f"{block.page.name}:{block.line}"
        for page in tutorial_pages()
        for block in blocks(page)
        if block.language == "python" and block.marked_not_run
    ]
    assert len(not_run) <= MAX_NOT_RUN, not_run


def test_every_python_block_is_python() -> None:
    """A block meant to run is not hidden behind another language tag by mistake."""
    for page in tutorial_pages():
        for block in blocks(page):
            if block.language in ("py", "python3", "pycon"):
                pytest.fail(f"{page.name}:{block.line}: use ```python (it is run) or a marker")
