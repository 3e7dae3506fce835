"""``--workers N`` and ``--reload``: server processes on one listening socket, supervised.

Start-up support for both servers' command lines, not part of the protocol core. The server
binds the socket first, so a bad host, port or path is reported once, before any worker
starts; the supervisor then starts each worker as the same command line plus ``--fd N``
on that socket: the kernel spreads connections between them. Each worker writes one byte to a
pipe once it is serving. A worker that exits before that (an app that does not import, a failed
lifespan startup) stops the whole server with its exit status, instead of being restarted in a
loop; one that exits later is restarted. SIGINT and SIGTERM are passed on to every worker (each
shuts down gracefully; a second signal forces it) and the supervisor exits once all have.

Workers run in their own session, so a Ctrl+C in the terminal reaches them once, through the
supervisor, rather than twice (which would force their exit).

``--reload`` is the same supervisor with one worker and a watch on the ``.py``
files under the reload directories: a change restarts the worker, and a worker that fails to
start (a syntax error being fixed) waits for the next change instead of stopping the server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import selectors
import signal
import subprocess
import threading
from collections.abc import Sequence
from types import FrameType

_log = logging.getLogger("tether.error")

# The longest wait between looks at the workers (a signal or a worker's exit ends it sooner).
_POLL_SECONDS = 1.0
# How often --reload looks at the files, and how many it looks at, at most.
_RELOAD_POLL_SECONDS = 0.25
_RELOAD_MAX_FILES = 20_000
_SKIPPED_DIRS = frozenset(("__pycache__", "node_modules", "site-packages"))


def _ignore(signum: int, frame: FrameType | None) -> None:
    """A handler that only makes the signal wake the supervisor's wait."""


class _Worker:
    """One worker process and the read end of its "serving" pipe (-1 once read)."""

    __slots__ = ("process", "ready", "ready_pipe", "slot")

    def __init__(self, slot: int, process: subprocess.Popen[bytes], ready_pipe: int) -> None:
        self.slot = slot
        self.process = process
        self.ready_pipe = ready_pipe
        self.ready = False


class _Watcher:
    """The modification times of the ``.py`` files under some directories, polled."""

    __slots__ = ("_dirs", "_seen")

    def __init__(self, dirs: Sequence[str]) -> None:
        self._dirs = [os.path.abspath(d) for d in dirs]
        self._seen = self._scan()

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
                    elif name.endswith(".py"):
                        found[entry.path] = entry.stat().st_mtime_ns
                except OSError:
                    continue  # removed while looking
        return found


class Supervisor:
    """Runs ``workers`` copies of the server on one socket; see the module docstring."""

    def __init__(
        self,
        command: Sequence[str],
        workers: int,
        reload_dirs: Sequence[str] | None = None,
    ) -> None:
        #: The worker command line, to which ``--fd`` and ``--notify-fd`` are added.
        self._command = list(command)
        self._count = workers
        self._reload_dirs = reload_dirs
        self._workers: dict[int, _Worker] = {}
        self._selector = selectors.DefaultSelector()
        self._signals: list[int] = []

    def run(self, fd: int) -> int:
        """Serve on the listening socket ``fd`` until told to stop; return the exit status."""
        # A signal writes to this pipe, so that the wait below ends at once.
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        self._selector.register(wake_r, selectors.EVENT_READ, None)
        handlers = threading.current_thread() is threading.main_thread()
        if handlers:
            old_wakeup = signal.set_wakeup_fd(wake_w)
            old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
            # A worker's exit wakes the wait too (the handler itself has nothing to do).
            old[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, _ignore)
        try:
            return self._supervise(fd, wake_r)
        finally:
            if handlers:
                signal.set_wakeup_fd(old_wakeup)
                for signum, handler in old.items():
                    signal.signal(signum, handler)
            for worker in list(self._workers.values()):
                worker.process.kill()
                worker.process.wait()
                self._forget(worker)
            self._selector.close()
            os.close(wake_r)
            os.close(wake_w)

    def _supervise(self, fd: int, wake: int) -> int:
        watcher = _Watcher(self._reload_dirs) if self._reload_dirs is not None else None
        for slot in range(self._count):
            self._start(slot, fd)
        if watcher is None:
            _log.info("Tether supervisor (pid %d) started %d workers", os.getpid(), self._count)
        else:
            _log.info(
                "Tether reloader (pid %d) watching %s",
                os.getpid(),
                ", ".join(self._reload_dirs or ()),
            )
        stopping = False
        reloading = False
        status = 0
        while self._workers or (watcher is not None and not stopping):
            wait = _RELOAD_POLL_SECONDS if watcher is not None else _POLL_SECONDS
            for key, _ in self._selector.select(wait):
                if key.data is None:
                    with contextlib.suppress(OSError):
                        os.read(wake, 512)
                else:
                    self._read_ready(key.data)
            while self._signals:
                signum = self._signals.pop(0)
                if not stopping:
                    _log.info("%s received: stopping the workers", signal.Signals(signum).name)
                stopping = True
                self._signal_all(signum)
            if watcher is not None and not stopping and not reloading:
                changed = watcher.changed()
                if changed is not None:
                    _log.info("%s changed: restarting", changed)
                    if self._workers:
                        reloading = True
                        self._signal_all(signal.SIGTERM)
                    else:
                        self._start(0, fd)
            for worker in list(self._workers.values()):
                code = worker.process.poll()
                if code is None:
                    continue
                self._read_ready(worker)  # a byte it wrote just before exiting counts
                self._forget(worker)
                if stopping:
                    continue
                if watcher is not None and reloading:
                    reloading = False
                    self._start(worker.slot, fd)
                elif watcher is not None and not worker.ready:
                    _log.error("the app failed to start (status %d); waiting for a change", code)
                elif not worker.ready:
                    _log.error(
                        "worker %d exited with status %d while starting; stopping",
                        worker.slot,
                        code,
                    )
                    status = code or 1
                    stopping = True
                    self._signal_all(signal.SIGTERM)
                else:
                    _log.warning(
                        "worker %d exited with status %d; restarting it", worker.slot, code
                    )
                    self._start(worker.slot, fd)
        return status

    def _start(self, slot: int, fd: int) -> None:
        read_end, write_end = os.pipe()
        # Given last, these win over the same options earlier in the command line.
        options = ["--fd", str(fd), "--notify-fd", str(write_end)]
        try:
            process = subprocess.Popen(
                [*self._command, *options],
                pass_fds=(fd, write_end),
                start_new_session=True,
            )
        finally:
            os.close(write_end)
        worker = _Worker(slot, process, read_end)
        self._workers[slot] = worker
        self._selector.register(read_end, selectors.EVENT_READ, worker)

    def _read_ready(self, worker: _Worker) -> None:
        """Read the worker's "serving" byte if it is there (or EOF), then close the pipe."""
        pipe = worker.ready_pipe
        if pipe < 0:
            return
        try:
            data = os.read(pipe, 1) if self._readable(pipe) else None
        except OSError:
            data = b""
        if data is None:
            return
        worker.ready = data == b"1"
        self._selector.unregister(pipe)
        os.close(pipe)
        worker.ready_pipe = -1

    @staticmethod
    def _readable(fd: int) -> bool:
        return bool(select.select([fd], [], [], 0)[0])

    def _forget(self, worker: _Worker) -> None:
        self._workers.pop(worker.slot, None)
        if worker.ready_pipe >= 0:
            self._selector.unregister(worker.ready_pipe)
            os.close(worker.ready_pipe)
            worker.ready_pipe = -1

    def _signal_all(self, signum: int) -> None:
        for worker in self._workers.values():
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signum)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)
