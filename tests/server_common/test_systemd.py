"""tether_server.systemd: sd_notify datagrams received on a Unix socket the test owns, and the
socket-activation variables read as sd_listen_fds(3) reads them."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether_server.systemd import Notifier, listen_fds


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def _received(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_ready_stopping_and_reloading_reach_the_manager(manager: tuple[socket.socket, str]) -> None:
    sock, path = manager
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.ready("serving on 127.0.0.1:8000")
    assert _received(sock) == [
        "READY=1",
        f"MAINPID={os.getpid()}",
        "STATUS=serving on 127.0.0.1:8000",
    ]
    assert notifier.reloading()
    fields = _received(sock)
    assert fields[0] == "RELOADING=1" and fields[1].startswith("MONOTONIC_USEC=")
    assert notifier.stopping()
    assert _received(sock) == ["STOPPING=1"]


def test_watchdog_pings_at_half_the_timeout(manager: tuple[socket.socket, str]) -> None:
    sock, path = manager
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"})
    assert notifier.watchdog_interval == 2.0
    assert notifier.watchdog(100.0)
    assert _received(sock) == ["WATCHDOG=1"]
    assert not notifier.watchdog(101.9)  # not yet half the timeout since the last ping
    assert notifier.watchdog(102.0)
    assert _received(sock) == ["WATCHDOG=1"]


def test_watchdog_for_another_pid_is_not_ours(manager: tuple[socket.socket, str]) -> None:
    _, path = manager
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}
    assert Notifier(env).watchdog_interval is None


def test_without_notify_socket_nothing_is_sent() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.ready() and not notifier.stopping() and not notifier.watchdog(1e9)


def test_a_gone_manager_is_not_an_error(tmp_path: Path) -> None:
    assert not Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody.sock")}).ready()


def test_listen_fds_reads_the_variables_for_this_process_only() -> None:
    pid = str(os.getpid())
    env = {"LISTEN_FDS": "2", "LISTEN_PID": pid, "LISTEN_FDNAMES": "http:metrics"}
    assert listen_fds(env) == [(3, "http"), (4, "metrics")]
    assert listen_fds({"LISTEN_FDS": "1", "LISTEN_PID": pid}) == [(3, "unknown")]
    assert listen_fds({"LISTEN_FDS": "1", "LISTEN_PID": str(os.getpid() + 1)}) == []
    assert listen_fds({"LISTEN_FDS": "x", "LISTEN_PID": pid}) == []
    assert listen_fds({}) == []
