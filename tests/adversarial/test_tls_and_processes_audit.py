"""TLS clients and process control, as a hostile client and a hurried operator meet them.

Real server processes (``tests.processes``): what a client or an operator sees is checked, not
how the server gets there. Found by the TLS and process-control audit; the TLS basics (half a
ClientHello, plain HTTP on the TLS port) are test_asyncio_hostile's, the signal basics
test_signals's.
"""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from tests.processes import RUNNING, STOPPED, LogLines, free_port, reaped, spawn

pytestmark = pytest.mark.timeout(60)

#: A WSGI app whose request waits for the file ``release`` to exist, then takes one second
#: more (the app's own work, not the test's synchronisation) and says "app returned".
STUCK_WSGI_APP = """
import os, time

def app(environ, start_response):
    print("in app", flush=True)
    while not os.path.exists("release"):
        time.sleep(0.01)
    time.sleep(1.0)
    print("app returned", flush=True)
    start_response("200 OK", [("Content-Length", "4")])
    return [b"done"]
"""


def _send_request(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    return sock


# -- tether-threaded: the graceful shutdown's bound ------------------------------------------------


@pytest.mark.parametrize("signals", [1, 2], ids=["grace-runs-out", "second-signal"])
def test_threaded_stop_does_not_wait_for_a_stuck_app_past_the_grace(
    tmp_path: Path, signals: int
) -> None:
    # The threads still in the app were given 2 s more after --timeout-graceful-shutdown ran
    # out, and after a second signal ("forcing exit"), so every stop with a stuck request
    # overran the stop timeout an operator derives from the grace. The app here is let go
    # once the server has given up on it and returns a second later: the server must have
    # exited without waiting for it.
    (tmp_path / "stuck.py").write_text(STUCK_WSGI_APP)
    port = free_port()
    proc = spawn(
        "tether_threaded", tmp_path, "stuck:app", "--port", str(port),
        "--timeout-graceful-shutdown", "0.5", "--no-access-log",
    )  # fmt: skip
    with reaped(proc):
        log, out = LogLines(proc), LogLines(proc, stdout=True)
        log.wait_for(RUNNING)
        with _send_request(port):
            out.wait_for("in app")
            proc.send_signal(signal.SIGINT)
            if signals == 2:
                log.wait_for("a second signal forces")
                proc.send_signal(signal.SIGINT)
                log.wait_for("second signal: forcing exit")
            else:
                log.wait_for("graceful shutdown timed out")
            (tmp_path / "release").touch()
            assert proc.wait(20) == 0
        assert STOPPED in log.finish()
        assert "app returned" not in out.finish()
