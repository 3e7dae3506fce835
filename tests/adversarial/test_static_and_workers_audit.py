"""Audit of static files behind ``--static`` and of the ``--workers`` supervisor, on real processes.

Both servers run as subprocesses (``tether serve`` and ``tether-threaded``) with
``--static /s=ROOT``; clients speak raw HTTP/1.1 over loopback sockets, and the servers' logs are
read for tracebacks. The supervisor tests send real signals to real process trees and look for
the workers in ``/proc``. What tests/server_common/test_static.py, tests/static/ and
tests/adversarial/test_signals.py already check is not repeated here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import (
    RUNNING,
    LogLines,
    free_port,
    gone,
    reaped,
    spawn,
    touch_with,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)

SERVERS = ("asyncio", "threaded")
SECRET = b"TOPSECRET-beside-the-root"
HELLO = b"hello world\n"

ASGI_APP = """
import os

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"4"), (b"x-pid", str(os.getpid()).encode())]})
    await send({"type": "http.response.body", "body": b"done"})
"""

WSGI_APP = """
import os

def app(environ, start_response):
    start_response("200 OK", [("Content-Length", "4"), ("X-Pid", str(os.getpid()))])
    return [b"done"]
"""


def _start(server: str, cwd: Path, port: int, *args: str) -> subprocess.Popen[str]:
    common = ("--port", str(port), "--timeout-keep-alive", "2", *args)
    if server == "asyncio":
        return spawn("tether_asyncio", cwd, "serve", "app_asgi:app", "--lifespan", "on", *common)
    return spawn("tether_threaded", cwd, "app_wsgi:app", "--threads", "4", *common)


def _apps(directory: Path) -> Path:
    touch_with(directory / "app_asgi.py", ASGI_APP)
    touch_with(directory / "app_wsgi.py", WSGI_APP)
    return directory


# -- static files ---------------------------------------------------------------------------------


@dataclass
class StaticServer:
    server: str
    port: int
    root: Path
    log: LogLines

    def connect(self, rcvbuf: int | None = None) -> socket.socket:
        sock = socket.socket()
        if rcvbuf is not None:  # set before connecting, so the window stays small
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", self.port))
        return sock

    def raw(self, request: bytes) -> bytes:
        """Send ``request`` (it asks to close) and read until the server closes."""
        with self.connect() as sock:
            sock.sendall(request)
            return _read_to_eof(sock)


def _read_to_eof(sock: socket.socket) -> bytes:
    chunks = []
    while data := sock.recv(1 << 20):
        chunks.append(data)
    return b"".join(chunks)


def _make_root(base: Path) -> Path:
    root = base / "root"
    (root / "d").mkdir(parents=True)
    (base / "secret").write_bytes(SECRET)
    (root / "hello.txt").write_bytes(HELLO)
    (root / "d" / "index.html").write_bytes(b"<h1>d</h1>\n")
    (root / "devnull").symlink_to("/dev/null")  # outside the root, and not a regular file
    (root / "loop").symlink_to(root / "loop")  # resolves to nothing (ELOOP)
    (root / "up").symlink_to("..")
    if os.geteuid() == 0:  # a character device inside the root itself
        os.mknod(root / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return root


@pytest.fixture(scope="module", params=SERVERS)
def static_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StaticServer]:
    base = _apps(tmp_path_factory.mktemp("static-audit"))
    root = _make_root(base)
    port = free_port()
    server = request.param
    with reaped(_start(server, base, port, "--static", f"/s={root}")) as proc:
        log = LogLines(proc)
        log.wait_for(RUNNING)
        yield StaticServer(server, port, root, log)
        proc.terminate()
        proc.wait(15)


ODD_TARGETS = [
    "/s/devnull",
    "/s/null",
    "/s/loop",
    "/s/up/secret",
    "/s/up/app_asgi.py",
    "/s/%2fetc%2fpasswd",
    "/s//etc/passwd",
    "/s/.%2e/secret",
    "/s/%2e./secret",
    "/s/d/%2e%2e/%2e%2e/secret",
    "/s/C:%5c..%5csecret",
    "/s/C:/secret",
    "/s/%5c%5c127.0.0.1%5cshare",
    "/s/hello.txt/",
    "/s/hello.txt/.",
    "/s/d",  # a directory, without html=True
    "/s/d/",
    "/s/d//",
    "/s/%00",
    "/s/d%00/index.html",
    "/s/%ff",
    "/s/%c0%ae%c0%ae/secret",  # overlong UTF-8 for "..": not UTF-8
    "/s/%ed%a0%80",  # an encoded surrogate: not UTF-8
    "/s/" + "x" * 300,  # a name longer than NAME_MAX
    "/s/" + "a/" * 2100 + "b",  # a path longer than PATH_MAX
    "/s/" + "../" * 60 + "secret",
    "/s/" + "%2e%2e%2f" * 60 + "secret",
    "http://x/s/../secret",
]


def test_odd_paths_are_refused_without_a_traceback(static_server: StaticServer) -> None:
    mark = len(static_server.log.text)
    refused = {}
    for target in ODD_TARGETS:
        response = static_server.raw(
            f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
        status = response[9:12]
        if status not in (b"400", b"404") or SECRET in response or b"root:" in response:
            refused[target[:60]] = response[:200]
    assert refused == {}
    # Still serving, and nothing above made a traceback.
    assert static_server.raw(b"GET /s/hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[
        -len(HELLO) :
    ] == (HELLO)
    assert "Traceback" not in static_server.log.text[mark:]


def _read_response(
    sock: socket.socket, buffer: bytearray, head_request: bool
) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """One response off a kept-alive connection: status line, fields, body (by the framing
    rules: HEAD, 304 and 416-with-length-0 answers end at their head)."""
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        assert data, f"connection closed mid-head: {bytes(buffer)!r}"
        buffer += data
    head, _, _ = bytes(buffer).partition(b"\r\n\r\n")
    del buffer[: len(head) + 4]
    status, *lines = head.split(b"\r\n")
    fields = {}
    for line in lines:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    code = int(status[9:12])
    length = 0 if head_request or code == 304 else int(fields.get(b"content-length", b"0"))
    while len(buffer) < length:
        data = sock.recv(65536)
        assert data, "connection closed mid-body"
        buffer += data
    body = bytes(buffer[:length])
    del buffer[:length]
    return status, fields, body


def test_bodiless_answers_send_no_byte_after_their_head(static_server: StaticServer) -> None:
    # Pipelined on one connection: a body byte after a 304, a HEAD or a 416 would be read as
    # the start of the next response, and the last GET would come out wrong.
    requests = [
        ("GET", "If-None-Match: *", 304),
        ("HEAD", "If-None-Match: *", 304),
        ("HEAD", "", 200),
        ("HEAD", "Range: bytes=0-1,4-5", 200),
        ("GET", "Range: bytes=500-", 416),
        ("GET", "Range: bytes=-0", 416),
        ("HEAD", "Range: bytes=500-", 200),
        ("GET", 'If-Match: "nope"', 412),
        ("HEAD", 'If-Match: "nope"', 412),
        ("GET", "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT", 200),  # future: ignored
        ("GET", "Range: bytes=0-0,-1", 206),
        ("GET", "", 200),
    ]
    wire = b"".join(
        f"{method} /s/hello.txt HTTP/1.1\r\nHost: x\r\n{extra + chr(13) + chr(10) if extra else ''}"
        f"\r\n".encode()
        for method, extra, _ in requests
    )
    with static_server.connect() as sock:
        sock.sendall(wire)
        buffer = bytearray()
        seen = []
        for method, extra, _want in requests:
            status, fields, body = _read_response(sock, buffer, method == "HEAD")
            seen.append((method, extra, int(status[9:12])))
            if int(status[9:12]) == 416:
                assert fields[b"content-range"] == b"bytes */%d" % len(HELLO)
                assert fields[b"content-length"] == b"0"
            if method == "HEAD" and int(status[9:12]) == 200:
                assert fields[b"content-length"] == b"%d" % len(HELLO)
            if int(status[9:12]) == 206:
                assert fields[b"content-type"].startswith(b"multipart/byteranges; boundary=")
                assert len(body) == int(fields[b"content-length"])
        assert seen == [(m, e, w) for m, e, w in requests]
        assert body == HELLO
        sock.settimeout(0.5)
        with contextlib.suppress(TimeoutError):
            assert sock.recv(1) == b"", "bytes after the last response"


SHRINKS = {
    "whole": "",
    "range": "Range: bytes=0-33554431\r\n",
    "byteranges": "Range: bytes=0-33554431,60000000-60000009\r\n",
}


def _shrink_while_sending(site: StaticServer, name: str, extra: str) -> tuple[int, int]:
    """Ask for a 64 MiB file, cut it to 1 MiB once the head came (the client reads slowly, so
    the server is mid-body), read to EOF; (Content-Length, body bytes received)."""
    path = site.root / f"{name}.bin"
    with open(path, "wb") as file:
        file.truncate(64 << 20)  # sparse: nothing written
    with site.connect(rcvbuf=4096) as sock:
        sock.sendall(f"GET /s/{name}.bin HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            data = sock.recv(4096)
            assert data
            buffer += data
        head, _, body = buffer.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        os.truncate(path, 1 << 20)
        received = len(body) + len(_read_to_eof(sock))
    path.unlink()
    return length, received


@pytest.mark.parametrize("case", list(SHRINKS))
def test_a_file_that_shrinks_while_sent_cuts_the_response_short(
    static_server: StaticServer, case: str
) -> None:
    # The body ends early and the connection closes (never a hang, never other bytes passed
    # off as the file's), the same way for the whole file, one range and several ranges.
    mark = len(static_server.log.text)
    length, received = _shrink_while_sending(static_server, case, SHRINKS[case])
    assert received < length
    assert static_server.raw(b"GET /s/hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[
        -len(HELLO) :
    ] == (HELLO)
    # The static layer ends the body as documented (tether_server.static: "a file that shrank
    # meanwhile ends the body early") rather than failing with its own error.
    assert "RangeReadError" not in static_server.log.text[mark:]


def test_a_file_that_shrinks_while_sent_logs_no_traceback(static_server: StaticServer) -> None:
    mark = len(static_server.log.text)
    length, received = _shrink_while_sending(static_server, "quiet", SHRINKS["range"])
    assert received < length
    # The access line of the cut response is written after the error, if any.
    static_server.log.wait_for("GET /s/quiet.bin", 1, timeout=10)
    assert "Traceback" not in static_server.log.text[mark:]
    # One warning line says what happened (tether.errors.ShortBody), once.
    assert static_server.log.text[mark:].lower().count("response cut short") == 1, (
        static_server.log.text[mark:]
    )


def test_a_file_that_grows_while_sent_keeps_to_its_content_length(
    static_server: StaticServer,
) -> None:
    # A file appended to while it is sent (a log under the static directory): exactly
    # Content-Length bytes of it go, and the kept-alive connection answers the next request.
    mark = len(static_server.log.text)
    path = static_server.root / "grows.log"
    with open(path, "wb") as file:
        file.truncate(16 << 20)
    with static_server.connect(rcvbuf=4096) as sock:
        sock.sendall(b"GET /s/grows.log HTTP/1.1\r\nHost: x\r\n\r\n")
        buffer = bytearray()
        while b"\r\n\r\n" not in buffer:
            data = sock.recv(4096)
            assert data
            buffer += data
        with open(path, "ab") as file:  # the server is mid-body: the client has read little
            file.write(b"X" * (1 << 20))
        sock.sendall(b"GET /s/hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        rest = bytes(buffer) + _read_to_eof(sock)
    path.unlink()
    head, _, body = rest.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    assert length == 16 << 20
    assert b"X" not in body[:length]
    assert body[length:].startswith(b"HTTP/1.1 200 "), body[length : length + 40]
    assert body.endswith(HELLO)
    assert "Traceback" not in static_server.log.text[mark:]


# -- the --workers supervisor ---------------------------------------------------------------------


def _children(pid: int) -> set[int]:
    """Live (not zombie) processes whose parent is ``pid``."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                fields = file.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.add(int(entry))
    return found


def _working_in(directory: Path) -> set[int]:
    """Live processes whose working directory is ``directory``: every generation of a test's
    server, the workers the supervisor started after a test took its list included."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and not gone(int(entry)):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{entry}/cwd") == str(directory):
                    found.add(int(entry))
    return found


@contextlib.contextmanager
def _killing_afterwards(pids: set[int]) -> Iterator[set[int]]:
    """SIGKILL, after the test, any process in ``pids`` still running (a failed test's orphans)."""
    try:
        yield pids
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("server", SERVERS)
def test_supervisor_killed_mid_reload_leaves_no_worker(tmp_path: Path, server: str) -> None:
    # SIGKILL to the supervisor while a SIGHUP's new workers are still starting: the old ones
    # (serving) and the new ones (importing the app) must all go, none left on the port.
    port = free_port()
    proc = _start(server, _apps(tmp_path), port, "--workers", "2")
    with reaped(proc), _killing_afterwards(set()) as pids:
        log = LogLines(proc)
        log.wait_for(RUNNING, 2)
        pids.update(_children(proc.pid))
        assert len(pids) == 2
        os.kill(proc.pid, signal.SIGHUP)
        assert wait_until(lambda: len(_children(proc.pid)) == 4, 10), log.text
        pids.update(_children(proc.pid))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        # Every process of this server, not only the four listed: one the supervisor started
        # after the list was taken (a worker replaced during the handover) holds the port too,
        # and must go the same way (its pipe from the supervisor ends as well).
        pids.update(_working_in(tmp_path))
        assert wait_until(lambda: all(map(gone, pids)) and not _working_in(tmp_path), 20), [
            pid for pid in pids | _working_in(tmp_path) if not gone(pid)
        ]
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize("server", SERVERS)
def test_a_replacement_that_cannot_import_stops_the_server_once(
    tmp_path: Path, server: str
) -> None:
    # A worker killed after the app file broke on disk: its replacement cannot import the app.
    # The supervisor must not restart it in a loop: it stops (status non-zero), the healthy
    # worker drains and exits with it, and no process is left behind.
    apps = _apps(tmp_path)
    port = free_port()
    proc = _start(server, apps, port, "--workers", "2")
    with reaped(proc), _killing_afterwards(set()) as pids:
        log = LogLines(proc)
        log.wait_for(RUNNING, 2)
        pids.update(_children(proc.pid))
        assert len(pids) == 2
        for name in ("app_asgi.py", "app_wsgi.py"):
            touch_with(apps / name, "raise ImportError('broken deploy')\n")
        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        assert proc.wait(30) != 0
        text = log.finish()
        assert wait_until(lambda: all(gone(pid) for pid in pids), 20)
        assert text.count("ImportError: broken deploy") == 1, text
        assert text.count("while starting; stopping") == 1, text


@pytest.mark.parametrize("server", SERVERS)
def test_sigttou_never_takes_the_last_worker(tmp_path: Path, server: str) -> None:
    port = free_port()
    proc = _start(server, _apps(tmp_path), port, "--workers", "2")
    with reaped(proc), _killing_afterwards(set()) as pids:
        log = LogLines(proc)
        log.wait_for(RUNNING, 2)
        pids.update(_children(proc.pid))
        os.kill(proc.pid, signal.SIGTTOU)
        log.wait_for("retired worker")
        os.kill(proc.pid, signal.SIGTTOU)
        log.wait_for("SIGTTOU received: ignored, there is one worker left")
        assert len(_children(proc.pid)) == 1
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert _read_to_eof(sock).endswith(b"done")
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(20) == 0
        assert wait_until(lambda: all(gone(pid) for pid in pids), 10)


#: An app whose import waits for a file named "go" in its directory (printing "importing").
GATED = """
import os
import time

print("importing", flush=True)
while not os.path.exists("go"):
    time.sleep(0.01)
"""


@pytest.mark.parametrize("server", SERVERS)
def test_a_worker_killed_while_starting_is_replaced_once(tmp_path: Path, server: str) -> None:
    # SIGKILL (the OOM killer, an operator) to a worker still importing the app is not the app
    # failing to start: gunicorn replaces such a worker, and so does the supervisor -- once. A
    # second death in a row before serving stops the server (no restart loop).
    apps = _apps(tmp_path)
    for name, app in (("app_asgi.py", ASGI_APP), ("app_wsgi.py", WSGI_APP)):
        touch_with(apps / name, GATED + app)
    proc = _start(server, apps, free_port(), "--workers", "2")
    with reaped(proc), _killing_afterwards(set()) as pids:
        log = LogLines(proc)
        out = LogLines(proc, stdout=True)
        out.wait_for("importing", 2)
        assert wait_until(lambda: len(_children(proc.pid)) == 2, 10)
        pids.update(_children(proc.pid))
        first = min(pids)
        os.kill(first, signal.SIGKILL)
        log.wait_for("killed by SIGKILL while starting; restarting it")
        out.wait_for("importing", 3)
        replacement = _children(proc.pid) - pids
        assert len(replacement) == 1, (replacement, pids)
        pids.update(replacement)
        assert proc.poll() is None
        os.kill(replacement.pop(), signal.SIGKILL)
        assert proc.wait(20) != 0
        text = log.finish()
        assert text.count("while starting; restarting it") == 1, text
        assert text.count("while starting; stopping") == 1, text
        (apps / "go").touch()  # let the last worker go, if it is still there
        assert wait_until(lambda: all(gone(pid) for pid in pids), 20)


def _stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as file:
        return file.read().rpartition(")")[2].split()[0] in ("T", "t")


@pytest.mark.parametrize("server", SERVERS)
def test_sigttou_to_a_lone_server_does_not_freeze_it(tmp_path: Path, server: str) -> None:
    port = free_port()
    proc = _start(server, _apps(tmp_path), port, "--workers", "1")
    answered: list[bytes] = []
    try:
        log = LogLines(proc)
        log.wait_for(RUNNING)
        os.kill(proc.pid, signal.SIGTTOU)

        def ask() -> None:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), timeout=30) as sock,
            ):
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                answered.append(_read_to_eof(sock))

        client = threading.Thread(target=ask, daemon=True)
        client.start()
        # An answer means the signal was delivered (before the process ran on) and ignored.
        assert wait_until(lambda: bool(answered) or _stopped(proc.pid), 20)
        assert not _stopped(proc.pid)
        assert answered[0].endswith(b"done")
        log.wait_for("SIGTTOU received: ignored (to add or remove a worker, run with --workers)")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
        proc.wait(15)
