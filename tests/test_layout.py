"""The shape of the house: a pure core, and no import cycle in any package.

Read from the source with :mod:`ast` (nothing is imported), so the check costs milliseconds and
sees every import: at module level, inside ``if TYPE_CHECKING:`` and inside functions (a lazy
import that closes a cycle is still a cycle, only a hidden one).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = {
    "tether": ROOT / "packages/core/src/tether",
    "tether_server": ROOT / "packages/server-common/src/tether_server",
    "tether_asyncio": ROOT / "packages/server-asyncio/src/tether_asyncio",
    "tether_threaded": ROOT / "packages/server-threaded/src/tether_threaded",
}

#: What a sans-I/O core must not import: sockets, processes, threads, signals, event loops,
#: argument parsing and TLS belong to the servers.
FORBIDDEN_IN_CORE = frozenset(
    {
        "argparse",
        "ssl",
        "subprocess",
        "selectors",
        "socket",
        "threading",
        "signal",
        "asyncio",
        "anyio",
        "trio",
        "multiprocessing",
        "select",
    }
)


def _module_name(package: str, root: pathlib.Path, path: pathlib.Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def _imports(package: str, root: pathlib.Path) -> dict[str, set[str]]:
    """Each module of ``package`` and the absolute module names it imports (anywhere in it)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        name = _module_name(package, root, path)
        is_package = path.name == "__init__.py"
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    base = base[: len(base) - node.level + (1 if is_package else 0)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                found.add(module)
                # "from pkg import sub" may name a submodule.
                found.update(f"{module}.{alias.name}" for alias in node.names)
        graph[name] = found
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle among the modules of ``graph``, or None."""
    edges = {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}
    # A package's __init__ importing its own submodules is not a cycle by itself; an edge from
    # a submodule back up to its package is what would close one.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges[node]):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_core_does_no_io() -> None:
    """The core (distribution ``tether``) imports nothing that does I/O, threads or parses argv."""
    bad = {
        module: sorted(d for d in deps if d.split(".")[0] in FORBIDDEN_IN_CORE)
        for module, deps in _imports("tether", PACKAGES["tether"]).items()
    }
    assert {m: d for m, d in bad.items() if d} == {}


def test_the_core_depends_on_no_server() -> None:
    """Layers point one way: core <- tether_server <- servers; nothing points back up."""
    for package, allowed_above in (("tether", set()), ("tether_server", {"tether"})):
        for module, deps in _imports(package, PACKAGES[package]).items():
            ours = {d.split(".")[0] for d in deps} & set(PACKAGES)
            assert ours <= allowed_above | {package}, (module, ours)


def test_servers_use_no_private_name_of_another_package() -> None:
    for package in ("tether_server", "tether_asyncio", "tether_threaded"):
        for module, deps in _imports(package, PACKAGES[package]).items():
            private = sorted(
                d
                for d in deps
                if d.split(".")[0] in PACKAGES
                and d.split(".")[0] != package
                and any(part.startswith("_") for part in d.split(".")[1:])
            )
            assert private == [], (module, private)


@pytest.mark.parametrize("package", list(PACKAGES))
def test_no_import_cycle(package: str) -> None:
    assert _cycle(_imports(package, PACKAGES[package])) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}}) == ["p.a", "p.b", "p.c", "p.a"]
    assert _cycle({"p.a": {"p.b"}, "p.b": set()}) is None
