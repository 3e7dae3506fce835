"""``--workers N`` and ``--reload``: server processes on one listening socket, supervised.

Start-up support for both servers' command lines, not part of the protocol core. The server
binds the socket first, so a bad host, port or path is reported once, before any worker
starts; the supervisor then starts each worker as the same command line plus ``--fd N``
on that socket: the kernel spreads connections between them. Each worker writes one byte to a
pipe once it is serving. A worker that exits before that (an app that does not import, a failed
lifespan startup) stops the whole server with its exit status, instead of being restarted in a
loop; one that exits later is restarted, and so is one killed by a signal while starting (the
OOM killer, an operator: not the app's fault), once -- a second such death in a row stops too.

Signals to the supervisor (as gunicorn's arbiter has them):

- SIGINT, SIGTERM: stop. The signal is passed on to every worker (each shuts down gracefully;
  a second signal forces it) and the supervisor exits once all have. SIGQUIT: the same, quickly
  (each worker closes its connections at once, as after a second signal). A worker still running
  ``--timeout-graceful-shutdown`` + STOP_SLACK seconds after it was told to stop or to drain
  (its loop blocked by the app, so deaf to signals) is killed, as gunicorn's arbiter does.
- SIGHUP: reload without losing a request. N new workers start (importing the app afresh);
  once every one of them says it is serving, the old ones are sent SIGHUP and drain (below).
  If a new worker exits before it serves, the reload is abandoned and logged: the old workers
  keep serving. A SIGHUP during a reload starts it over (new workers stuck starting are retired).
- SIGTTIN, SIGTTOU: one worker more, or one fewer (never below one); the one removed drains.

A worker told SIGHUP *hands over*: it stops accepting (the socket stays open in the other
workers, which accept what waits in the backlog), answers its requests in flight with
``Connection: close``, and keeps its idle keep-alive connections open until the client's next
request (answered the same way) or their keep-alive timeout. Closing an idle connection at once
would lose the request a client may be sending on it at that very moment; this way a client
that uses its connection learns from the answer that it must open a new one.

Workers never outlive the supervisor, however it dies (SIGKILL included): each inherits the
read end of a pipe whose write end only the supervisor holds, and a thread waits on it. EOF
means the supervisor is gone, and the worker sends itself SIGTERM, so it drains as on a normal
stop; the same thread ends the process if it is still there after the grace and STOP_SLACK
(:func:`tether_server.stopping.watch_supervisor`; a lone server has the same bound, see
:mod:`tether_server.stopping`). (``PR_SET_PDEATHSIG`` is not used: Linux-only, it fires when
the parent *thread* exits, and a second stop signal on top of the pipe's would force the
worker's exit.)

Workers run in their own session, so a Ctrl+C in the terminal reaches them once, through the
supervisor, rather than twice (which would force their exit).

``--reload`` is this supervisor with one worker and :mod:`tether_server.reload_watch`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING

from tether_server.logfiles import REOPEN_SIGNAL, reopen_log_files
from tether_server.reload_watch import FileWatcher
from tether_server.stopping import QUICK_STOP_SIGNAL, STOP_SLACK, signal_name
from tether_server.systemd import Notifier
from tether_server.workers import Role, Worker

if TYPE_CHECKING:
    from tether_server.server_metrics import SupervisorMetrics

_log = logging.getLogger("tether.error")

# The longest wait between looks at the workers (a signal or a worker's exit ends it sooner).
_POLL_SECONDS = 1.0
# How often --reload looks at the files.
_RELOAD_POLL_SECONDS = 0.25
#: The signals the supervisor acts on (SIGCHLD only wakes it).
_HANDLED = (
    signal.SIGINT,
    signal.SIGTERM,
    QUICK_STOP_SIGNAL,
    signal.SIGHUP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    REOPEN_SIGNAL,
)


def _ignore(signum: int, frame: FrameType | None) -> None:
    """A handler that only makes the signal wake the supervisor's wait."""


class Supervisor:
    """Runs ``workers`` copies of the server on one socket; see the module docstring."""

    def __init__(
        self,
        command: Sequence[str],
        workers: int,
        *,
        reload_dirs: Sequence[str] | None = None,
        reload_include: Sequence[str] = (),
        reload_exclude: Sequence[str] = (),
        healthcheck_timeout: float | None = None,
        graceful_timeout: float | None = None,
        metrics: SupervisorMetrics | None = None,
    ) -> None:
        #: The worker command line, to which ``--fd``, ``--notify-fd`` and ``--supervisor-fd``
        #: are added.
        self._command = list(command)
        self._count = workers
        self._reload_dirs = reload_dirs
        self._reload_patterns = (tuple(reload_include), tuple(reload_exclude))
        #: --timeout-worker-healthcheck: a worker silent this long after a heartbeat is killed.
        self._healthcheck = healthcheck_timeout
        #: --timeout-graceful-shutdown: a worker told to stop or drain that is still running
        #: this long (plus STOP_SLACK) after is killed, as gunicorn's arbiter does. A worker
        #: whose loop an app blocks cannot act on its signal, and the supervisor waited for it
        #: for ever (a stop that never ended; after a reload, old workers that never left).
        self._grace = graceful_timeout
        self._deadlines: dict[Worker, float] = {}
        self._workers: list[Worker] = []
        self._selector = selectors.DefaultSelector()
        self._signals: list[int] = []
        self._fd = -1
        self._close_listener: Callable[[], None] | None = None
        #: The read end of the pipe whose EOF tells the workers that the supervisor is gone.
        self._alive = -1
        self._stopping = False
        self._status = 0
        #: --reload: the worker was told to stop and is started again once it has exited.
        self._restart = False
        #: sd_notify: READY once every worker first serves, RELOADING/STOPPING, the watchdog.
        self._notifier = Notifier()
        self._announced = False
        #: Slots whose last worker was killed by a signal before it served (restarted once).
        self._killed_starting: set[int] = set()
        #: --metrics-port: the workers' sum, and the restarts counted here.
        self._metrics = metrics

    def run(self, fd: int, close_listener: Callable[[], None] | None = None) -> int:
        """Serve on the listening socket ``fd`` until told to stop; return the exit status.

        ``close_listener`` closes this process's copy of ``fd``: called at a stop, before the
        workers are told. While this copy stays open the kernel goes on queueing connections
        that no worker will accept, and resets them when this process exits.
        """
        self._fd = fd
        self._close_listener = close_listener
        # A signal writes to this pipe, so that the wait below ends at once.
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        # Nothing is ever written to this one: the write end stays open (here only, as pipes
        # are not inherited unless passed) until this process ends, however it ends.
        self._alive, alive_w = os.pipe()
        self._selector.register(wake_r, selectors.EVENT_READ, None)
        handlers = threading.current_thread() is threading.main_thread()
        if handlers:
            old_wakeup = signal.set_wakeup_fd(wake_w)
            old = {s: signal.signal(s, self._on_signal) for s in _HANDLED}
            # A worker's exit wakes the wait too (the handler itself has nothing to do).
            old[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, _ignore)
        try:
            return self._supervise(wake_r)
        finally:
            if handlers:
                signal.set_wakeup_fd(old_wakeup)
                for signum, handler in old.items():
                    signal.signal(signum, handler)
            for worker in list(self._workers):
                worker.process.kill()
                worker.process.wait()
                self._forget(worker)
            self._selector.close()
            for end in (wake_r, wake_w, self._alive, alive_w):
                os.close(end)

    def _supervise(self, wake: int) -> int:
        watcher = (
            FileWatcher(self._reload_dirs, *self._reload_patterns)
            if self._reload_dirs is not None
            else None
        )
        for slot in range(self._count):
            self._start(slot, Role.ACTIVE)
        if watcher is None:
            _log.info("Tether supervisor (pid %d) started %d workers", os.getpid(), self._count)
        else:
            _log.info(
                "Tether reloader (pid %d) watching %s",
                os.getpid(),
                ", ".join(self._reload_dirs or ()),
            )
        while self._workers or (watcher is not None and not self._stopping):
            wait = _RELOAD_POLL_SECONDS if watcher is not None else _POLL_SECONDS
            for key, _ in self._selector.select(wait):
                if key.data is None:
                    with contextlib.suppress(OSError):
                        os.read(wake, 512)
                else:
                    self._read_ready(key.data)
            while self._signals:
                self._handle(self._signals.pop(0), watcher is not None)
            if watcher is not None and not self._stopping and not self._restart:
                changed = watcher.changed()
                if changed is not None:
                    self._restart_worker(f"{changed} changed")
            self._reap(watcher is not None)
            if not self._stopping and watcher is None:
                self._switch_over()
                self._reconcile()
            self._announce()
            now = time.monotonic()
            self._check_heartbeats(now)
            self._kill_overdue(now)
            self._notifier.watchdog(now)
        return self._status

    def _check_heartbeats(self, now: float) -> None:
        """Kill a worker whose loop stopped ticking (gunicorn's --timeout); _reap restarts it."""
        limit = self._healthcheck
        if limit is None or self._stopping:
            return
        for worker in self._workers:
            beat = worker.last_beat
            if beat is None or worker.killed or now - beat <= limit:
                continue
            _log.error(
                "worker %d (pid %d) sent no heartbeat for %.0f s (--timeout-worker-healthcheck "
                "%g): its event loop is stuck; killing it",
                worker.slot,
                worker.process.pid,
                now - beat,
                limit,
            )
            worker.killed = True
            worker.send(signal.SIGKILL)

    def _set_deadline(self, worker: Worker) -> None:
        """``worker`` was told to stop or drain: from now it has the grace (once)."""
        if self._grace is not None and worker not in self._deadlines:
            self._deadlines[worker] = time.monotonic() + self._grace + STOP_SLACK

    def _kill_overdue(self, now: float) -> None:
        """Kill a worker still running past its stop deadline (_set_deadline)."""
        for worker, deadline in list(self._deadlines.items()):
            if now < deadline or worker.killed:
                continue
            _log.error(
                "worker %d (pid %d) is still running %g s after it was told to stop "
                "(--timeout-graceful-shutdown %g); killing it",
                worker.slot,
                worker.process.pid,
                self._grace + STOP_SLACK if self._grace is not None else 0.0,
                self._grace,
            )
            worker.killed = True
            worker.send(signal.SIGKILL)

    def _announce(self) -> None:
        """READY=1 to a service manager once every worker serves for the first time."""
        if self._announced or self._stopping or not self._workers:
            return
        if all(w.ready for w in self._workers if w.role is Role.ACTIVE):
            self._announced = True
            self._notifier.ready(f"{len(self._workers)} workers serving")

    # -- signals ---------------------------------------------------------------------------------

    def _handle(self, signum: int, reloader: bool) -> None:
        name = signal.Signals(signum).name
        if signum == REOPEN_SIGNAL:
            # Log files (logrotate moved them): this process's, then every worker's.
            count = reopen_log_files()
            _log.info("%s received: %d log file(s) reopened, passed on to the workers", name, count)
            for worker in self._workers:
                worker.send(signum)
        elif signum in (signal.SIGINT, signal.SIGTERM, QUICK_STOP_SIGNAL):
            if not self._stopping:
                quickly = " quickly" if signum == QUICK_STOP_SIGNAL else ""
                _log.info("%s received: stopping the workers%s", name, quickly)
            self._stop(signum)
        elif self._stopping:
            _log.info("%s received while stopping: ignored", name)
        elif reloader:
            if signum == signal.SIGHUP:
                self._restart_worker("SIGHUP received")
            else:
                _log.warning("%s received: ignored (--reload runs one worker)", name)
        elif signum == signal.SIGHUP:
            self._reload()
        elif signum == signal.SIGTTIN:
            self._count += 1
            _log.info("SIGTTIN received: %d workers", self._count)
        elif self._count == 1:
            _log.warning("SIGTTOU received: ignored, there is one worker left")
        else:
            self._count -= 1
            _log.info("SIGTTOU received: %d workers", self._count)

    def _stop(self, signum: int) -> None:
        """Pass a stop signal on; workers already draining get only a second one (forcing),
        or SIGQUIT (which forces at once)."""
        first = not self._stopping
        self._stopping = True
        if first:
            self._notifier.stopping()
            # No worker is started from here on. Once the workers' copies are the last, each
            # takes what is queued before closing its own (a stop's final accepts).
            if self._close_listener is not None:
                self._close_listener()
                self._close_listener = None
        for worker in self._workers:
            self._set_deadline(worker)
            if signum == QUICK_STOP_SIGNAL or not (first and worker.role is Role.RETIRING):
                worker.send(signum)

    def _reload(self) -> None:
        self._notifier.reloading()
        pending = [w for w in self._workers if w.role is Role.NEXT]
        if pending:
            _log.warning("SIGHUP received during a reload: starting it over")
            for worker in pending:
                self._retire(worker)
        else:
            _log.info(
                "SIGHUP received: starting %d new workers; the old ones drain once they serve",
                self._count,
            )
        for slot in range(self._count):
            self._count_restart("reload")
            self._start(slot, Role.NEXT)

    def _restart_worker(self, why: str) -> None:
        """--reload: stop the worker and start it again once it has exited."""
        if self._restart:
            return  # already on its way out (a second SIGTERM would force it)
        _log.info("%s: restarting", why)
        if self._workers:
            self._restart = True
            for worker in self._workers:
                self._set_deadline(worker)
                worker.send(signal.SIGTERM)
        else:
            self._start(0, Role.ACTIVE)

    # -- workers coming and going ----------------------------------------------------------------

    def _reap(self, reloader: bool) -> None:
        for worker in list(self._workers):
            code = worker.process.poll()
            if code is None:
                continue
            self._read_ready(worker)  # a byte it wrote just before exiting counts
            self._forget(worker)
            pid = worker.process.pid
            if self._metrics is not None:
                self._metrics.exited(pid)
            if self._stopping:
                continue
            if worker.role is Role.RETIRING:
                _log.info("retired worker (pid %d) exited with status %d", pid, code)
            elif worker.role is Role.NEXT and worker.replaces is not None:
                _log.error(
                    "the replacement for worker %d (pid %d) exited with status %d; the old one "
                    "keeps serving",
                    worker.slot,
                    pid,
                    code,
                )
            elif worker.role is Role.NEXT:
                when = "after it started serving" if worker.ready else "while starting"
                _log.error(
                    "reload failed: a new worker (pid %d) exited with status %d %s; "
                    "the old workers keep serving",
                    pid,
                    code,
                    when,
                )
                for other in self._workers:
                    if other.role is Role.NEXT:
                        self._retire(other)
            elif reloader and self._restart:
                self._restart = False
                self._count_restart("reload")
                self._start(worker.slot, Role.ACTIVE)
            elif reloader and not worker.ready:
                _log.error("the app failed to start (status %d); waiting for a change", code)
            elif not worker.ready and code < 0 and worker.slot not in self._killed_starting:
                # Killed from outside (the OOM killer, an operator), not the app failing: as
                # gunicorn, start it again -- once: a second such death in a row stops.
                self._killed_starting.add(worker.slot)
                _log.warning(
                    "worker %d was killed by %s while starting; restarting it",
                    worker.slot,
                    signal_name(-code),
                )
                self._count_restart("exit")
                self._start(worker.slot, Role.ACTIVE)
            elif not worker.ready:
                _log.error(
                    "worker %d exited with status %d while starting; stopping", worker.slot, code
                )
                self._status = code or 1
                self._stop(signal.SIGTERM)
            else:
                _log.warning("worker %d exited with status %d; restarting it", worker.slot, code)
                self._count_restart("healthcheck" if worker.killed else "exit")
                self._start(worker.slot, Role.ACTIVE)

    def _switch_over(self) -> None:
        """Once every new worker of a reload serves, retire the old ones."""
        for worker in [w for w in self._workers if w.role is Role.NEXT and w.replaces]:
            if worker.ready:
                replaced = worker.replaces
                worker.role, worker.replaces = Role.ACTIVE, None
                if replaced is not None and replaced in self._workers:
                    self._retire(replaced)
                    _log.info(
                        "recycled worker %d: pid %d serving, pid %d draining",
                        worker.slot,
                        worker.process.pid,
                        replaced.process.pid,
                    )
        new = [w for w in self._workers if w.role is Role.NEXT and w.replaces is None]
        if not new or not all(w.ready for w in new):
            return
        old = [w for w in self._workers if w.role is Role.ACTIVE]
        for worker in old:
            self._retire(worker)
        for worker in new:
            worker.role = Role.ACTIVE
        self._notifier.ready(f"reloaded: {len(new)} workers serving")
        _log.info(
            "reloaded: new workers (pids %s) serving; old workers (pids %s) draining",
            ", ".join(str(w.process.pid) for w in new),
            ", ".join(str(w.process.pid) for w in old),
        )

    def _reconcile(self) -> None:
        """Start or retire workers to match the count SIGTTIN and SIGTTOU set."""
        if any(w.role is Role.NEXT for w in self._workers):
            return  # a reload is under way; the count is looked at once it ends
        active = sorted((w for w in self._workers if w.role is Role.ACTIVE), key=lambda w: w.slot)
        for worker in active[self._count :]:
            _log.info("retiring worker %d (pid %d)", worker.slot, worker.process.pid)
            self._retire(worker)
        used = {w.slot for w in active[: self._count]}
        missing = self._count - len(used)
        for slot in [s for s in range(self._count) if s not in used][:missing]:
            _log.info("starting worker %d", slot)
            self._start(slot, Role.ACTIVE)

    def _retire(self, worker: Worker) -> None:
        """Let ``worker`` drain and exit, handing its connections over (SIGHUP)."""
        worker.role = Role.RETIRING
        self._set_deadline(worker)
        worker.send(signal.SIGHUP)

    def _start(self, slot: int, role: Role, replaces: Worker | None = None) -> None:
        worker = Worker.start(
            self._command, slot, role, fd=self._fd, alive=self._alive, replaces=replaces
        )
        self._workers.append(worker)
        self._selector.register(worker.ready_pipe, selectors.EVENT_READ, worker)
        _log.debug("worker %d started (pid %d)", slot, worker.process.pid)

    def _read_ready(self, worker: Worker) -> None:
        """Act on what the worker wrote on its pipe (see :meth:`Worker.read`)."""
        data = worker.read(self._selector)
        if b"1" in data:
            worker.ready = True
            self._killed_starting.discard(worker.slot)
            if worker.last_beat is None:
                worker.last_beat = time.monotonic()  # judged from the moment it serves
        if b"h" in data:
            worker.last_beat = time.monotonic()
        if b"r" in data:
            self._recycle(worker)

    def _recycle(self, worker: Worker) -> None:
        """The worker served its --limit-max-requests: start its replacement first; the old
        one is told to drain once the new one serves."""
        if self._stopping or worker.role is not Role.ACTIVE:
            return
        if any(w.replaces is worker for w in self._workers):
            return
        _log.info(
            "worker %d (pid %d) reached --limit-max-requests: starting its replacement",
            worker.slot,
            worker.process.pid,
        )
        self._count_restart("max_requests")
        self._start(worker.slot, Role.NEXT, replaces=worker)

    def _count_restart(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.restarted(reason)

    def _forget(self, worker: Worker) -> None:
        self._deadlines.pop(worker, None)
        with contextlib.suppress(ValueError):
            self._workers.remove(worker)
        worker.close_pipe(self._selector)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)
