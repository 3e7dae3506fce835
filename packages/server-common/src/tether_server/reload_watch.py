"""What ``--reload`` watches: the modification times of the files under some directories, polled.

``--reload`` is the supervisor (:mod:`tether_server.supervisor`) with one worker and this watch
on the ``.py`` files under the reload directories: a change (or SIGHUP) restarts the worker, and
a worker that fails to start (a syntax error being fixed) waits for the next change instead of
stopping the server.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence

#: Never watched: hidden files, compiled Python, editor backups and swap files (as uvicorn).
_ALWAYS_EXCLUDED = (".*", "*.py[cod]", "*~", "*.sw.", ".#*")
# How many files are looked at, at most.
_RELOAD_MAX_FILES = 20_000
_SKIPPED_DIRS = frozenset(("__pycache__", "node_modules", "site-packages"))


class FileWatcher:
    """The modification times of the ``.py`` files under some directories, polled."""

    __slots__ = ("_dirs", "_exclude", "_include", "_seen")

    def __init__(
        self, dirs: Sequence[str], include: Sequence[str] = (), exclude: Sequence[str] = ()
    ) -> None:
        self._dirs = [os.path.abspath(d) for d in dirs]
        # File names: *.py always, plus --reload-include; minus the usual noise and
        # --reload-exclude (patterns with a "/" match the path under the directory instead).
        self._include = ("*.py", *include)
        self._exclude = (*_ALWAYS_EXCLUDED, *exclude)
        self._seen = self._scan()

    def _watched(self, path: str, name: str) -> bool:
        def match(patterns: Sequence[str]) -> bool:
            return any(fnmatch.fnmatch(path if "/" in p else name, p) for p in patterns)

        return match(self._include) and not match(self._exclude)

    def changed(self) -> str | None:
        """A file added, removed or modified since the last call, or None."""
        now = self._scan()
        if now == self._seen:
            return None
        changed = next(
            path for path in now.keys() | self._seen.keys() if now.get(path) != self._seen.get(path)
        )
        self._seen = now
        return changed

    def _scan(self) -> dict[str, int]:
        found: dict[str, int] = {}
        pending = list(self._dirs)
        while pending and len(found) < _RELOAD_MAX_FILES:
            try:
                entries = list(os.scandir(pending.pop()))
            except OSError:
                continue
            for entry in entries:
                name = entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if not name.startswith(".") and name not in _SKIPPED_DIRS:
                            pending.append(entry.path)
                    elif self._watched(entry.path, name):
                        found[entry.path] = entry.stat().st_mtime_ns
                except OSError:
                    continue  # removed while looking
        return found
