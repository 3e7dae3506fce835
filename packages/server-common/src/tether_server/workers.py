"""One worker process as the supervisor sees it: started on the listening socket with its pipes,
read from (each byte a word), signalled. When to do which is :mod:`tether_server.supervisor`'s."""

from __future__ import annotations

import contextlib
import enum
import os
import select
import selectors
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

#: What a service manager sets for this process alone: workers must not act on it (systemd
#: would take a worker's READY=1 for the service's, and the sockets are the supervisor's).
_MANAGER_VARIABLES = frozenset(
    {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"}
)


class Role(enum.Enum):
    """What a worker is to the supervisor."""

    ACTIVE = "active"  # one of the N workers, serving or starting
    NEXT = "next"  # started by a reload: replaces the active ones once all of its kind serve
    RETIRING = "retiring"  # told to drain (SIGHUP); not replaced when it exits


@dataclass(eq=False, slots=True)
class Worker:
    """One worker process and the read end of its "serving" pipe (-1 once read)."""

    slot: int
    role: Role
    process: subprocess.Popen[bytes]
    ready_pipe: int
    #: The worker this one replaces once it serves (--limit-max-requests); None in a reload.
    replaces: Worker | None = None
    ready: bool = False
    #: When its last heartbeat came (monotonic); from the moment it serves, then at each
    #: heartbeat (None while it starts: start-up has no such limit).
    last_beat: float | None = None
    killed: bool = False

    @classmethod
    def start(
        cls,
        command: Sequence[str],
        slot: int,
        role: Role,
        *,
        fd: int,
        alive: int,
        replaces: Worker | None = None,
    ) -> Worker:
        """Run ``command`` serving on the socket ``fd``; ``alive`` is the pipe whose EOF tells
        it that the supervisor is gone."""
        read_end, write_end = os.pipe()
        # Given last, these win over the same options earlier in the command line.
        options = ["--fd", str(fd), "--notify-fd", str(write_end), "--supervisor-fd", str(alive)]
        try:
            process = subprocess.Popen(
                [*command, *options],
                pass_fds=(fd, write_end, alive),
                start_new_session=True,
                env={k: v for k, v in os.environ.items() if k not in _MANAGER_VARIABLES},
            )
        finally:
            os.close(write_end)
        return cls(slot, role, process, read_end, replaces)

    def read(self, selector: selectors.BaseSelector) -> bytes:
        """What the worker wrote on its pipe and was not read yet (each byte a word: ``1``
        serving, ``h`` a heartbeat, ``r`` recycle me); at EOF the pipe is closed."""
        pipe = self.ready_pipe
        if pipe < 0:
            return b""
        try:
            if not select.select([pipe], [], [], 0)[0]:
                return b""
            data = os.read(pipe, 512)
        except OSError:
            data = b""
        if not data:
            self.close_pipe(selector)
        return data

    def close_pipe(self, selector: selectors.BaseSelector) -> None:
        """Stop listening to the worker (its pipe is unregistered from ``selector``)."""
        if self.ready_pipe >= 0:
            selector.unregister(self.ready_pipe)
            os.close(self.ready_pipe)
            self.ready_pipe = -1

    def send(self, signum: int) -> None:
        """Signal the worker, unless it has already gone."""
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signum)
