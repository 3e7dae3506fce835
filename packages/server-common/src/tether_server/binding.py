"""The listening socket both servers serve on: ``--host/--port``, ``--uds`` or ``--fd``.

Binding is I/O, so it lives here, in the servers' shared package, not in the sans-I/O core;
every failure a user can cause raises :class:`~tether_server.startup.ConfigError` with one
clear line.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from typing import Protocol

from tether_server.startup import ConfigError


class BindOptions(Protocol):
    """What :func:`bind_socket` reads from a server's configuration."""

    host: str
    port: int
    uds: str | None
    fd: int | None
    backlog: int


def bind_socket(config: BindOptions) -> socket.socket:
    """Create the listening socket for ``--host/--port``, ``--uds`` or ``--fd``."""
    if config.fd is not None:
        try:
            sock = socket.socket(fileno=config.fd)
        except OSError as exc:
            raise ConfigError(f"--fd {config.fd}: not a usable socket ({exc.strerror})") from None
        if sock.type != socket.SOCK_STREAM:
            raise ConfigError(f"--fd {config.fd}: not a stream socket")
        sock.setblocking(False)
        sock.listen(config.backlog)
        return sock
    if config.uds is not None:
        path = config.uds
        if os.path.exists(path):
            if not stat.S_ISSOCK(os.stat(path).st_mode):
                raise ConfigError(f"--uds {path}: exists and is not a socket")
            os.unlink(path)  # a stale socket from an earlier run
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            os.chmod(path, 0o666)
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
    return sock


__all__ = ["BindOptions", "bind_socket"]
