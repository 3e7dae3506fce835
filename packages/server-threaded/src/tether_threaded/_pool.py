"""The worker pool: as few threads awake as keep the queue moving.

Waking every idle worker for every queued request makes them fight over the GIL. So a worker is
woken only when work is queued and every awake worker has been inside one job for longer than
:data:`STALL` seconds. The loop calls :meth:`Pool.kick` after each pass and every :data:`STALL`
seconds while work is queued: a blocking application still gets every thread within a few
milliseconds, and a fast one is served by a single hot thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

#: Seconds a worker may spend in one job before the pool stops counting on it to take the next.
STALL = 0.002

_log = logging.getLogger("tether.error")


class _Worker:
    __slots__ = ("asleep", "started", "thread", "wakeup")

    def __init__(self, pool: Pool, n: int) -> None:
        #: In the pool's sleeping list (changed under the pool's lock).
        self.asleep = False
        #: monotonic() when the current job started; 0.0 between jobs.
        self.started = 0.0
        #: Held while the worker sleeps; releasing it wakes the worker.
        self.wakeup = threading.Lock()
        self.wakeup.acquire()
        self.thread = threading.Thread(
            target=pool._work, args=(self,), name=f"tether-worker-{n}", daemon=True
        )


class Pool:
    """A fixed number of daemon worker threads taking jobs from one queue."""

    def __init__(self, threads: int) -> None:
        if threads < 1:
            raise ValueError("a server needs at least one worker thread")
        self._jobs: deque[Callable[[], None]] = deque()
        self._lock = threading.Lock()
        #: Sleeping workers, the most recently active last (woken first: its cache is warm).
        self._sleeping: list[_Worker] = []
        self._stopping = False
        self._workers = [_Worker(self, n) for n in range(threads)]
        for worker in self._workers:
            worker.thread.start()

    def submit(self, job: Callable[[], None]) -> None:
        """Queue ``job`` from a worker (a pipelined request) and wake a sleeping worker for it:
        the submitter is still busy with its own job, and the loop may be asleep."""
        self._jobs.append(job)
        self._wake_one()

    def queue(self, jobs: list[Callable[[], None]]) -> None:
        """Queue ``jobs`` without waking anyone (the caller kicks once for a batch)."""
        self._jobs.extend(jobs)

    def kick(self, now: float) -> bool:
        """Wake one worker if work waits and every awake worker is busy beyond STALL.

        Returns whether work is still queued (the caller should kick again within STALL).
        """
        if not self._jobs:
            return False
        for worker in self._workers:
            started = worker.started
            if not worker.asleep and (started == 0.0 or now - started < STALL):
                return True  # an awake worker will get to it
        self._wake_one()
        return True

    def _wake_one(self) -> None:
        with self._lock:
            if not self._sleeping:
                return
            worker = self._sleeping.pop()
            worker.asleep = False
        worker.wakeup.release()

    def _work(self, worker: _Worker) -> None:
        jobs = self._jobs
        monotonic = time.monotonic
        while True:
            try:
                job = jobs.popleft()
            except IndexError:
                with self._lock:
                    if jobs:
                        continue
                    if self._stopping:
                        return
                    worker.asleep = True
                    self._sleeping.append(worker)
                worker.wakeup.acquire()
                continue
            worker.started = monotonic()
            try:
                job()
            except BaseException:
                # A job reports its own errors; this keeps the thread alive if one slips through.
                _log.exception("unexpected error in a worker thread")
            worker.started = 0.0

    def stop(self, timeout: float) -> None:
        """Let every worker finish its job and exit; wait up to ``timeout`` seconds in total."""
        with self._lock:
            self._stopping = True
            self._jobs.clear()
            sleeping, self._sleeping = self._sleeping, []
            for worker in sleeping:
                worker.asleep = False
        for worker in sleeping:
            worker.wakeup.release()
        end = time.monotonic() + timeout
        for worker in self._workers:
            worker.thread.join(max(0.0, end - time.monotonic()))


__all__ = ["STALL", "Pool"]
