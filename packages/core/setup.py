"""Build the core pure Python, or compiled by mypyc when asked (``TETHER_COMPILE=1``).

The sources are the same either way (``pyproject.toml`` holds the metadata); compiling only
makes them faster. The rules:

- ``pip install ./packages/core`` installs pure Python, as every test of the suite runs it.
- ``TETHER_COMPILE=1 pip install ./packages/core`` compiles the modules a served request runs
  through, at mypyc's ``-O3`` unless ``MYPYC_OPT_LEVEL`` says otherwise (a few minutes, once;
  pip caches the wheel). pip fetches mypy, which brings mypyc, for that build only.
- An editable install (``pip install -e``) is never compiled: edits take effect.
- When compiling fails (no C compiler, no Python headers) the install goes on in pure Python
  and says so.

Opt-in, not the default, because the compiled core checks its arguments' declared types:
where pure Python takes any pair of bytes as a header field, a list ``[name, value]``
included (which ASGI allows), the compiled core refuses anything but a tuple. The test-time
modules (Hypothesis strategies, the conformance runner) stay interpreted: they are not on any
request's path, and they import test tools.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
INTERPRETED = {
    "_conformance_client.py",
    "_vector_files.py",
    "conformance.py",
    "strategies.py",
    "strategies_invalid.py",
    "strategies_ws.py",
}


def _note(message: str) -> None:
    print(f"tether: {message}", file=sys.stderr)


class _OptionalBuildExt(build_ext):
    """Compile the extensions; on any failure remove what was built and ship pure Python.

    A half-compiled core would be worse than either: the per-module shims import one shared
    library, so it is all or nothing.
    """

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # any failure means: pure Python
            for output in self.get_outputs():
                Path(output).unlink(missing_ok=True)
            _note(
                f"compiling failed ({type(error).__name__}: {str(error)[:160]}); installing pure Python"
            )


def _wanted() -> bool:
    """Whether this run builds a wheel that should be compiled (not metadata, not editable)."""
    building = "bdist_wheel" in sys.argv or "build_ext" in sys.argv
    return bool(os.environ.get("TETHER_COMPILE")) and building


def _compiled() -> list[Any]:
    if not _wanted():
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _note("mypyc is not available; installing pure Python")
        return []
    sources = sorted(
        path.relative_to(HERE).as_posix()
        for path in (HERE / "src" / "tether").rglob("*.py")
        if path.name not in INTERPRETED
    )
    try:
        # Module names come from src/, as in an installed tree (not "src.tether...").
        os.environ["MYPYPATH"] = str(HERE / "src")
        extensions = mypycify(
            ["--explicit-package-bases", *sources],
            opt_level=os.environ.get("MYPYC_OPT_LEVEL", "3"),
            debug_level=os.environ.get("MYPYC_DEBUG_LEVEL", "1"),
            group_name="tether",
        )
    except BaseException as error:  # mypyc reports type errors by SystemExit
        _note(f"mypyc could not translate the core ({error!r}); installing pure Python")
        return []
    return list(extensions)


_EXTENSIONS = _compiled()
setup(
    # pip asks for these before building: mypy (with mypyc) only when compiling.
    setup_requires=["mypy==2.4.1"] if os.environ.get("TETHER_COMPILE") else [],
    ext_modules=_EXTENSIONS,
    cmdclass={"build_ext": _OptionalBuildExt},
    # One build tree per kind: a pure build must not pick up an earlier build's modules.
    options={"build": {"build_base": "build/mypyc" if _EXTENSIONS else "build/pure"}},
)
