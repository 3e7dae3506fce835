"""systemd integration without a dependency: socket activation and ``sd_notify``.

- :func:`listen_fds` reads ``LISTEN_FDS`` / ``LISTEN_PID`` / ``LISTEN_FDNAMES`` (sd_listen_fds(3)):
  the sockets systemd (or any supervisor speaking the same protocol) opened for this process,
  starting at file descriptor 3. They are used when present, with no flag, as gunicorn does.
- :class:`Notifier` sends ``sd_notify`` datagrams to ``$NOTIFY_SOCKET`` (sd_notify(3)):
  ``READY=1`` once serving, ``RELOADING=1`` / ``STOPPING=1`` around a reload or shutdown,
  ``WATCHDOG=1`` at half of ``$WATCHDOG_USEC``. Without ``NOTIFY_SOCKET`` every call does
  nothing, so servers call it unconditionally.

A few lines of stdlib socket code; the protocol is documented as stable by systemd.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Mapping

#: The first inherited file descriptor (SD_LISTEN_FDS_START).
LISTEN_FDS_START = 3


def listen_fds(
    environ: Mapping[str, str] | None = None, *, unset: bool = True
) -> list[tuple[int, str]]:
    """The sockets passed by socket activation, as ``(fd, name)`` pairs; empty without any.

    They are this process's only when ``LISTEN_PID`` names it (a variable inherited by a child
    is not an invitation). With ``unset`` the variables are removed from ``os.environ`` so that
    processes this one starts do not take the sockets for theirs (sd_listen_fds' ``unset_environment``).
    """
    env = os.environ if environ is None else environ
    try:
        count = int(env.get("LISTEN_FDS", ""))
        pid = int(env.get("LISTEN_PID", ""))
    except ValueError:
        return []
    if count <= 0 or pid != os.getpid():
        return []
    names = env.get("LISTEN_FDNAMES", "").split(":") if env.get("LISTEN_FDNAMES") else []
    if unset and environ is None:
        for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
            os.environ.pop(name, None)
    fds = []
    for i in range(count):
        fd = LISTEN_FDS_START + i
        with contextlib.suppress(OSError):
            os.set_inheritable(fd, False)  # FD_CLOEXEC, as sd_listen_fds() sets it
        fds.append((fd, names[i] if i < len(names) else "unknown"))
    return fds


class Notifier:
    """``sd_notify`` for one process: a no-op unless ``$NOTIFY_SOCKET`` is set."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        """Read ``NOTIFY_SOCKET`` and ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``) once."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]  # an abstract socket
        self.address = address or None
        usec = env.get("WATCHDOG_USEC", "")
        watchdog_pid = env.get("WATCHDOG_PID", "")
        interval = None
        if usec.isdigit() and int(usec) > 0 and watchdog_pid in ("", str(os.getpid())):
            interval = int(usec) / 1e6 / 2
        #: Seconds between ``WATCHDOG=1`` pings (half the watchdog timeout), or None.
        self.watchdog_interval: float | None = interval if self.address else None
        self._last_ping = 0.0

    @property
    def enabled(self) -> bool:
        """Whether a service manager listens."""
        return self.address is not None

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` (``"READY=1"``, ``"STATUS=..."``) as one datagram; True if sent."""
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto("\n".join(fields).encode(), self.address)
        except OSError:
            return False  # the manager went away: nothing a server can do about it
        return True

    def ready(self, status: str = "") -> bool:
        """Serving: ``READY=1`` with this process's pid (and a status line)."""
        return self.notify("READY=1", f"MAINPID={os.getpid()}", *_status(status))

    def reloading(self) -> bool:
        """A reload began: ``RELOADING=1`` with the monotonic time systemd asks for."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        """A graceful shutdown began."""
        return self.notify("STOPPING=1")

    def watchdog(self, now: float) -> bool:
        """``WATCHDOG=1`` if half the watchdog timeout passed since the last one (``now`` from
        a monotonic clock); call it from the server's periodic tick."""
        if self.watchdog_interval is None or now - self._last_ping < self.watchdog_interval:
            return False
        self._last_ping = now
        return self.notify("WATCHDOG=1")


def _status(status: str) -> tuple[str, ...]:
    return (f"STATUS={status}",) if status else ()


__all__ = ["LISTEN_FDS_START", "Notifier", "listen_fds"]
