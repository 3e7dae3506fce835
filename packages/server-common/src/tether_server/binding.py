"""The listening socket both servers serve on: ``--host/--port``, ``--uds`` or ``--fd``, or the
socket systemd passed (socket activation, used when present, as gunicorn does).

Binding is I/O, so it lives here, in the servers' shared package, not in the sans-I/O core;
every failure a user can cause raises :class:`~tether_server.startup.ConfigError` with one
clear line.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import socket
import stat
import struct
import sys
import weakref
from typing import Protocol

from tether_server.options import ConfigError
from tether_server.systemd import listen_fds

_log = logging.getLogger("tether.error")

#: Seconds a server stops accepting after ``accept`` fails for want of descriptors or memory:
#: the backlog stays readable meanwhile, and retrying at once would spin (asyncio's own delay).
ACCEPT_PAUSE = 1.0

#: The TCP listeners this process bound itself (not systemd's nor an inherited ``--fd``):
#: only those may be told to refuse new connections at a stop (see refuse_new_connections).
_BOUND_HERE: weakref.WeakSet[socket.socket] = weakref.WeakSet()
#: Linux's SO_ATTACH_FILTER, and a classic BPF program for it: drop a segment whose TCP flags
#: are SYN without ACK (a new connection attempt), accept anything else. A TCP socket's filter
#: sees the TCP header at offset 0; byte 13 holds the flags.
_SO_ATTACH_FILTER = 26
_DROP_SYN = (
    (0x30, 0, 0, 13),  # ldb [13]
    (0x54, 0, 0, 0x12),  # and #(SYN | ACK)
    (0x15, 0, 1, 0x02),  # jeq #SYN, then drop, else accept
    (0x06, 0, 0, 0),  # ret #0: dropped
    (0x06, 0, 0, 0xFFFFFFFF),  # ret #-1: kept whole
)


class BindOptions(Protocol):
    """What :func:`bind_socket` reads from a server's configuration."""

    host: str
    port: int
    uds: str | None
    #: Permissions of the ``uds`` socket file (``--unix-socket-perms``).
    unix_socket_perms: int
    fd: int | None
    backlog: int


def bind_socket(config: BindOptions) -> socket.socket:
    """Create the listening socket for ``--host/--port``, ``--uds`` or ``--fd``.

    Without ``--fd`` or ``--uds``, a socket passed by systemd socket activation
    (``LISTEN_FDS``, for this process) wins over ``--host``/``--port``.
    """
    if config.fd is None and config.uds is None:
        activated = listen_fds()
        if activated:
            fd, name = activated[0]
            if len(activated) > 1:
                _log.warning(
                    "socket activation passed %d sockets; serving on the first (%s) only",
                    len(activated),
                    name,
                )
            _log.info("serving on the socket passed by systemd (fd %d, %s)", fd, name)
            return _from_fd(fd, "LISTEN_FDS", config.backlog)
    if config.fd is not None:
        return _from_fd(config.fd, f"--fd {config.fd}", config.backlog)
    if config.uds is not None:
        path = config.uds
        if os.path.exists(path):
            if not stat.S_ISSOCK(os.stat(path).st_mode):
                raise ConfigError(f"--uds {path}: exists and is not a socket")
            os.unlink(path)  # a stale socket from an earlier run
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            os.chmod(path, config.unix_socket_perms)
        except OSError as exc:
            sock.close()
            raise ConfigError(f"--uds {path}: cannot bind ({exc.strerror})") from None
        sock.listen(config.backlog)
        sock.setblocking(False)
        return sock
    host = config.host.strip("[]")
    try:
        infos = socket.getaddrinfo(
            host, config.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ConfigError(f"--host {config.host}: cannot resolve ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6 and host in ("::", ""):
        # "::" serves IPv4 too where the system allows it, like other servers do.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        shown = f"[{host}]" if ":" in host else host
        raise ConfigError(f"cannot bind to {shown}:{config.port}: {exc.strerror}") from None
    sock.listen(config.backlog)
    sock.setblocking(False)
    _BOUND_HERE.add(sock)
    return sock


def refuse_new_connections(sock: socket.socket) -> bool:
    """At a graceful stop, before the last accepts and the close: the kernel drops new
    connection attempts on ``sock`` from now on, while the connections it has queued stay to be
    accepted (their handshakes under way too). Returns whether it did.

    Closing the last copy of a listener resets the connections still queued: clients whose
    connect() succeeded and who sent their request. Without this, connections kept arriving
    between a server's last accept and its close; with it, a client that comes after sees its
    SYN dropped, retries, and finds the port closed (refused: nothing was lost). Linux only,
    TCP only, and only on a socket this process bound: one from systemd or ``--fd`` outlives
    this process (the filter would stay on it), and its backlog waits for the next server.
    """
    if sys.platform != "linux" or sock not in _BOUND_HERE:
        return False
    code = b"".join(struct.pack("HBBI", *instruction) for instruction in _DROP_SYN)
    program = ctypes.create_string_buffer(code, len(code))  # the kernel copies it
    try:
        sock.setsockopt(
            socket.SOL_SOCKET,
            _SO_ATTACH_FILTER,
            struct.pack("HP", len(_DROP_SYN), ctypes.addressof(program)),
        )
    except OSError as exc:
        _log.debug("could not make the listener refuse new connections: %s", exc)
        return False
    return True


def _from_fd(fd: int, what: str, backlog: int) -> socket.socket:
    """A listening stream socket on an inherited descriptor."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ConfigError(f"{what}: not a usable socket ({exc.strerror})") from None
    if sock.type != socket.SOCK_STREAM:
        raise ConfigError(f"{what}: not a stream socket")
    sock.setblocking(False)
    sock.listen(backlog)
    return sock


__all__ = ["ACCEPT_PAUSE", "BindOptions", "bind_socket", "refuse_new_connections"]
