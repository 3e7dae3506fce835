"""Signals to real server processes, on both servers: reload, resize, orphans, SIGHUP alone.

Each test runs ``tether serve`` or ``tether-threaded`` as a subprocess and sends it real
signals. Waits are bounded: log lines are read by a thread (:class:`tests.processes.LogLines`)
and process exits are polled with a deadline.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import (
    RUNNING,
    STOPPED,
    LogLines,
    free_port,
    gone,
    reaped,
    spawn,
    touch_with,
    wait_until,
)

pytestmark = pytest.mark.timeout(90)

SERVERS = ("asyncio", "threaded")

#: ``?seconds`` waits that long (printing "in app" first when it is at least half a second),
#: then answers "done" with the answering process's pid in ``x-pid``. The lifespan shutdown is
#: recorded on stdout.
ASGI_APP = """
import os
import anyio

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                print("lifespan shutdown", flush=True)
                await send({"type": "lifespan.shutdown.complete"})
                return
    delay = float(scope["query_string"] or b"0")
    if delay >= 0.5:
        print("in app", flush=True)
    if delay:
        await anyio.sleep(delay)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"4"), (b"x-pid", str(os.getpid()).encode())]})
    await send({"type": "http.response.body", "body": b"done"})
"""

WSGI_APP = """
import os
import time

def app(environ, start_response):
    delay = float(environ.get("QUERY_STRING") or "0")
    if delay >= 0.5:
        print("in app", flush=True)
    if delay:
        time.sleep(delay)
    start_response("200 OK", [("Content-Length", "4"), ("X-Pid", str(os.getpid()))])
    return [b"done"]
"""

#: The line each server logs once it serves.
SERVING = {"asyncio": RUNNING, "threaded": RUNNING}


@pytest.fixture
def apps(tmp_path: Path) -> Path:
    touch_with(tmp_path / "app_asgi.py", ASGI_APP)
    touch_with(tmp_path / "app_wsgi.py", WSGI_APP)
    return tmp_path


def _serve(server: str, cwd: Path, port: int, *args: str) -> subprocess.Popen[str]:
    common = ("--port", str(port), "--timeout-keep-alive", "2", *args)
    if server == "asyncio":
        return spawn("tether_asyncio", cwd, "serve", "app_asgi:app", "--lifespan", "on", *common)
    return spawn("tether_threaded", cwd, "app_wsgi:app", "--threads", "4", *common)


def _pids(port: int, want: int, attempts: int = 600) -> set[int]:
    """Pids answering fresh connections, until ``want`` distinct ones (bounded)."""
    pids: set[int] = set()
    for _ in range(attempts):
        response = httpx.get(
            f"http://127.0.0.1:{port}/", headers={"Connection": "close"}, timeout=10
        )
        pids.add(int(response.headers["x-pid"]))
        if len(pids) >= want:
            break
    return pids


@contextlib.contextmanager
def _no_orphans(pids: set[int]) -> Iterator[set[int]]:
    """Kill, after the test, any worker in ``pids`` still running (a failed test's orphans)."""
    try:
        yield pids
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class _Load:
    """Clients with keep-alive connections sending requests in a loop, counting failures.

    Every fourth request spends 20 ms in the app, so that some are in flight whenever a signal
    arrives; the others are answered at once, so idle keep-alive connections are reused as
    fast as a client can.
    """

    def __init__(self, url: str, clients: int = 4) -> None:
        self.url = url
        self.pids: list[int] = []
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                try:
                    response = client.get(self.url + ("/?0.02" if n % 4 == 0 else "/"))
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.failures.append(repr(exc))
                    continue
                with self._lock:
                    if response.status_code == 200 and response.text == "done":
                        self.pids.append(int(response.headers["x-pid"]))
                    else:
                        self.failures.append(f"{response.status_code} {response.text!r}")

    def done(self) -> int:
        with self._lock:
            return len(self.pids) + len(self.failures)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)


@pytest.mark.parametrize("server", SERVERS)
def test_sighup_under_load_reloads_without_losing_a_request(apps: Path, server: str) -> None:
    port = free_port()
    proc = _serve(server, apps, port, "--workers", "2")
    with reaped(proc), _no_orphans(set()) as started:
        log = LogLines(proc)
        log.wait_for(SERVING[server], 2)
        old = _pids(port, 2)
        started.update(old)
        assert len(old) == 2
        load = _Load(f"http://127.0.0.1:{port}")
        try:
            assert wait_until(lambda: load.done() >= 100, 30)
            proc.send_signal(signal.SIGHUP)
            log.wait_for("reloaded: new workers")
            assert wait_until(lambda: all(gone(pid) for pid in old), 15), log.text
            switched = load.done()
            assert wait_until(lambda: load.done() >= max(400, switched + 150), 30)
        finally:
            load.stop()
        assert load.failures == [], load.failures[:5]
        after = set(load.pids[switched:])
        started.update(after)
        assert after and after.isdisjoint(old)
        new = _pids(port, 2)
        assert len(new) == 2 and new.isdisjoint(old)
        assert log.count("exited with status 0") == 2  # the old workers, drained
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert "Traceback" not in log.finish()


@pytest.mark.parametrize("server", SERVERS)
def test_a_reload_whose_workers_fail_keeps_the_old_ones(apps: Path, server: str) -> None:
    port = free_port()
    proc = _serve(server, apps, port, "--workers", "2")
    module = apps / ("app_asgi.py" if server == "asyncio" else "app_wsgi.py")
    with reaped(proc), _no_orphans(set()) as started:
        log = LogLines(proc)
        log.wait_for(SERVING[server], 2)
        old = _pids(port, 2)
        started.update(old)
        good = module.read_text()
        touch_with(module, "raise RuntimeError('not today')\n")
        proc.send_signal(signal.SIGHUP)
        log.wait_for("reload failed")
        assert "the old workers keep serving" in log.text
        assert _pids(port, 2) == old
        touch_with(module, good)
        proc.send_signal(signal.SIGHUP)
        log.wait_for("reloaded: new workers")
        assert wait_until(lambda: all(gone(pid) for pid in old), 15), log.text
        new = _pids(port, 2)
        started.update(new)
        assert len(new) == 2 and new.isdisjoint(old)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


@pytest.mark.parametrize("server", SERVERS)
def test_workers_drain_and_exit_when_the_supervisor_is_killed(apps: Path, server: str) -> None:
    port = free_port()
    proc = _serve(server, apps, port, "--workers", "2")
    with reaped(proc), _no_orphans(set()) as workers:
        log = LogLines(proc)
        out = LogLines(proc, stdout=True)
        log.wait_for(SERVING[server], 2)
        workers.update(_pids(port, 2))
        assert len(workers) == 2
        result: list[httpx.Response] = []
        request = threading.Thread(
            target=lambda: result.append(httpx.get(f"http://127.0.0.1:{port}/?1", timeout=20))
        )
        request.start()
        out.wait_for("in app")
        proc.kill()
        assert proc.wait(10) == -signal.SIGKILL
        # Every worker notices, finishes what it has in flight and exits, within a bound.
        assert wait_until(lambda: all(gone(pid) for pid in workers), 10), log.text
        request.join(10)
        assert result and result[0].status_code == 200 and result[0].text == "done"
        assert log.count("is gone: stopping this worker") == 2


@pytest.mark.parametrize("server", SERVERS)
def test_sighup_without_workers_stops_gracefully(apps: Path, server: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _serve(server, apps, port)
    with reaped(proc), httpx.Client(timeout=20) as idle:
        log = LogLines(proc)
        out = LogLines(proc, stdout=True)
        log.wait_for(SERVING[server])
        assert idle.get(url + "/").status_code == 200  # leaves an idle keep-alive connection
        result: list[httpx.Response] = []
        request = threading.Thread(target=lambda: result.append(httpx.get(url + "/?1", timeout=20)))
        request.start()
        out.wait_for("in app")
        proc.send_signal(signal.SIGHUP)
        log.wait_for("SIGHUP received: shutting down gracefully")
        # The idle connection was not cut under the client: its next request is answered.
        late = idle.get(url + "/")
        assert late.status_code == 200
        request.join(20)
        assert result and result[0].status_code == 200
        assert result[0].headers["connection"] == "close"
        assert proc.wait(20) == 0
        err = log.finish()
    assert "--workers" in err
    assert "Traceback" not in err
    if server == "asyncio":
        out.wait_for("lifespan shutdown", timeout=5)
    else:
        assert STOPPED in err


@pytest.mark.parametrize("server", SERVERS)
def test_sigttin_and_sigttou_change_the_worker_count(apps: Path, server: str) -> None:
    port = free_port()
    proc = _serve(server, apps, port, "--workers", "2")
    with reaped(proc), _no_orphans(set()) as workers:
        log = LogLines(proc)
        log.wait_for(SERVING[server], 2)
        workers.update(_pids(port, 2))
        proc.send_signal(signal.SIGTTIN)
        log.wait_for("SIGTTIN received: 3 workers", timeout=10)
        log.wait_for(SERVING[server], 3)
        workers.update(_pids(port, 3))
        assert len(workers) == 3
        proc.send_signal(signal.SIGTTOU)
        log.wait_for("SIGTTOU received: 2 workers", timeout=10)
        log.wait_for("retired worker")
        found = re.search(r"retiring worker \d+ \(pid (\d+)\)", log.text)
        assert found is not None
        retired = int(found.group(1))
        assert retired in workers
        assert wait_until(lambda: gone(retired), 10)
        assert not any(gone(pid) for pid in workers - {retired})
        assert _pids(port, 2) == workers - {retired}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_sigint_while_clients_connect_exits_cleanly(apps: Path, loop: str) -> None:
    """Ctrl+C while new connections keep arriving: exit status 0 and no traceback. Before the
    fix, uvloop raised ValueError from an accept on the closed listening socket (every run
    exited 1) and asyncio logged InvalidStateError from an accept into a cancelled future."""
    pytest.importorskip(loop)
    for _ in range(3):  # the race needs a connection arriving as the listener stops
        port = free_port()
        proc = _serve("asyncio", apps, port, "--loop", loop)
        stop = threading.Event()
        connected = threading.Semaphore(0)

        with reaped(proc):
            log = LogLines(proc)
            log.wait_for(SERVING["asyncio"])
            clients = [
                threading.Thread(target=_connect_and_leave, args=(port, stop, connected))
                for _ in range(6)
            ]
            for client in clients:
                client.start()
            try:
                for _ in range(200):  # the clients are connecting and being served
                    assert connected.acquire(timeout=20)
                proc.send_signal(signal.SIGINT)
                status = proc.wait(30)
            finally:
                stop.set()
                for client in clients:
                    client.join(10)
            err = log.finish()
        assert status == 0, err
        assert "Traceback" not in err and "Error" not in err, err


def _connect_and_leave(port: int, stop: threading.Event, connected: threading.Semaphore) -> None:
    """Connect, send one request, read, close; again until ``stop``."""
    while not stop.is_set():
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
        ):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            sock.recv(1024)
            connected.release()
