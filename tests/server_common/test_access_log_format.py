"""``--access-log-format`` (issue 14): gunicorn's atoms on both servers' access lines, checked
over real sockets; a bad format stops the server at start-up; the default line is unchanged;
request data stays escaped (log injection)."""

from __future__ import annotations

import base64
import json
import re
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.processes import LogLines, free_port, reaped, spawn
from tether_server.accesslog import compile_access_format, escape
from tether_server.config import ServerConfig
from tether_server.options import ConfigError

ASGI_APP = """
async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await receive()  # the client's close
        return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-length", b"5"), (b"X-App", b"v1")]})
    await send({"type": "http.response.body", "body": b"hello"})
"""

WSGI_APP = """
def app(environ, start_response):
    if "tether.websocket" in environ:
        ws = environ["tether.websocket"].accept()
        try:
            ws.receive()
        except Exception:
            pass
        return []
    start_response("201 Created", [("Content-Length", "5"), ("X-App", "v1")])
    return [b"hello"]
"""

SERVERS = {
    "asyncio": ("tether_asyncio", "serve", "fmtapp:app"),
    "threaded": ("tether_threaded", "fmtapp:app"),
}


@contextmanager
def serving(tmp_path: Path, server: str, *options: str) -> Iterator[tuple[int, LogLines]]:
    """A server of kind ``server`` with ``options``; yields its port and log, then stops it."""
    (tmp_path / "fmtapp.py").write_text(ASGI_APP if server == "asyncio" else WSGI_APP)
    port = free_port()
    module, *rest = SERVERS[server]
    proc = spawn(module, tmp_path, *rest, "--port", str(port), *options,
                 env={"TETHER_TEST_TAG": "tagged"})  # fmt: skip
    with reaped(proc):
        log = LogLines(proc)
        log.wait_for(f":{port}")
        yield port, log
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.text


def access_lines(log: LogLines, marker: str) -> list[str]:
    """The access lines (without the level prefix) that contain ``marker``."""
    log.wait_for(marker)
    return [
        line.removeprefix("INFO: ")
        for line in log.text.splitlines()
        if marker in line and line.startswith("INFO: ")
    ]


def exchange(port: int, head: bytes) -> bytes:
    """Send a raw request head; return the whole answer (the request asks to close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


GUNICORN = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" '
    "m=%(m)s U=%(U)s q=%(q)s H=%(H)s B=%(B)s p=%(p)s D=%(D)s M=%(M)s L=%(L)s T=%(T)s "
    "in=%({X-Custom}i)s out=%({x-app}o)s env=%({wsgi.url_scheme}e)s,%({TETHER_TEST_TAG}e)s "
    "id=%(request_id)s st=%(st)s ws=%(ws_close)s 100%%"
)


@pytest.mark.parametrize("server", SERVERS)
def test_custom_format_atoms(tmp_path: Path, server: str) -> None:
    options = ("--access-log-format", GUNICORN, "--request-id-header", "X-Request-Id")
    with serving(tmp_path, server, *options) as (port, log):
        credentials = base64.b64encode(b"alice:s3cret").decode()
        headers = {
            "Authorization": f"Basic {credentials}",
            "Referer": "http://example.test/from",
            "User-Agent": "probe/1.0",
            "X-Custom": "custom-value",
            "X-Request-Id": "rid-9",
        }
        answer = httpx.get(f"http://127.0.0.1:{port}/path/x?a=1&b=2", headers=headers, timeout=10)
        assert answer.status_code == 201
        (line,) = access_lines(log, "/path/x")
    scheme = "http" if server == "threaded" else "-"  # the WSGI environ only on tether-threaded
    expected = (
        r"127\.0\.0\.1 - alice \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "
        r'"GET /path/x\?a=1&b=2 HTTP/1\.1" 201 5 "http://example\.test/from" "probe/1\.0" '
        r"m=GET U=/path/x q=a=1&b=2 H=HTTP/1\.1 B=5 p=<\d+> D=(\d+) M=(\d+) L=(\d+\.\d{6}) "
        r"T=(\d+) in=custom-value out=v1 "
        rf"env={scheme},tagged id=rid-9 st=Created ws=- 100%"
    )
    match = re.fullmatch(expected, line)
    assert match is not None, line
    micros, millis, seconds, whole = match.groups()
    # One duration in four units, each truncated from the same count of microseconds (as
    # gunicorn's are): L is D with a decimal point, never D rounded on its own.
    assert int(seconds.replace(".", "")) == int(micros)
    assert int(millis) == int(micros) // 1000 and int(whole) == int(micros) // 1_000_000
    assert 0 < int(micros) < 30_000_000  # generous: measured, not made up


@pytest.mark.parametrize("server", SERVERS)
def test_websocket_close_code_atom(tmp_path: Path, server: str) -> None:
    from websockets.sync.client import connect

    fmt = '"%(r)s" %(s)s %(ws_close)s %(u)s %({sec-websocket-version}i)s'
    with serving(tmp_path, server, "--access-logformat", fmt) as (port, log):
        with connect(f"ws://127.0.0.1:{port}/socket") as ws:
            ws.close(4001)
        (line,) = access_lines(log, "/socket")
    assert line == '"GET /socket HTTP/1.1" 101 4001 - 13'


@pytest.mark.parametrize("server", SERVERS)
def test_request_data_stays_escaped(tmp_path: Path, server: str) -> None:
    fmt = '"%(r)s" "%(a)s" %({x-evil}i)s %(u)s %(U)s'
    # A user name with a tab and a quote, inside valid Basic credentials.
    user = base64.b64encode(b'ev"il\tuser:pw').decode()
    head = (
        b'GET /q"\\x?y HTTP/1.1\r\nHost: h\r\nConnection: close\r\n'
        b"User-Agent: a\tb\xffc\r\n"
        b'X-Evil: 1" 200 0\t\x80 \\n\r\n' + f"Authorization: Basic {user}\r\n\r\n".encode()
    )
    with serving(tmp_path, server, "--access-log-format", fmt) as (port, log):
        assert exchange(port, head).startswith(b"HTTP/1.1 201 ")
        (line,) = access_lines(log, "/q")
    assert line == (
        r'"GET /q\"\\x?y HTTP/1.1" "a\tb\xffc" 1\" 200 0\t\x80 \\n ev\"il\tuser /q\"\\x'
    )


@pytest.mark.parametrize("server", SERVERS)
def test_default_line_unchanged(tmp_path: Path, server: str) -> None:
    with serving(tmp_path, server) as (port, log):
        httpx.get(f"http://127.0.0.1:{port}/plain?k=v", timeout=10)
        (line,) = access_lines(log, "/plain")
    assert re.fullmatch(r'127\.0\.0\.1:\d+ - "GET /plain\?k=v HTTP/1\.1" 201 5', line), line


@pytest.mark.parametrize("server", SERVERS)
def test_default_line_escapes_quotes_and_backslashes(tmp_path: Path, server: str) -> None:
    # A target with a quote and a backslash (no space: that would break the request line).
    forged = b'/plain"\\x'
    with serving(tmp_path, server) as (port, log):
        head = b"GET " + forged + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        answer = exchange(port, head)
        assert answer.startswith(b"HTTP/1.1 201"), answer
        (line,) = access_lines(log, "/plain")
    assert line.endswith(' - "GET /plain\\"\\\\x HTTP/1.1" 201 5'), line
    assert line.count('"') - line.count('\\"') == 2, line


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize(
    ("option", "fmt", "message"),
    [
        ("--access-log-format", "%(h)s %(nope)s", "unknown atom %(nope)s"),
        ("--access-logformat", "%(h)s 100%", "a '%' must begin an atom"),
        ("--access-log-format", "%(h)d", "a '%' must begin an atom"),
        ("--access-log-format", "%({bad name}i)s", "not a valid field name"),
    ],
)
def test_bad_format_fails_at_start(
    tmp_path: Path, server: str, option: str, fmt: str, message: str
) -> None:
    (tmp_path / "fmtapp.py").write_text(ASGI_APP if server == "asyncio" else WSGI_APP)
    module, *rest = SERVERS[server]
    proc = spawn(module, tmp_path, *rest, "--port", str(free_port()), option, fmt)
    with reaped(proc):
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err
    assert f"argument --access-log-format/--access-logformat: {message}" in err, err
    assert "Traceback" not in err


def test_config_refuses_a_bad_format() -> None:
    with pytest.raises(ConfigError, match=r"--access-log-format: unknown atom %\(x\)s"):
        ServerConfig(access_log_format="%(x)s")
    # Off, a format is not compiled (and costs nothing per request).
    assert ServerConfig(access_log=False, access_log_format="%(h)s").access_format is None


def test_escape_is_apaches() -> None:
    assert escape(b"plain text/1.0") == "plain text/1.0"
    assert escape(b'a"b\\c\td\ne\rf\x00\x1b\x7f\xff') == r"a\"b\\c\td\ne\rf\x00\x1b\x7f\xff"
    assert compile_access_format("%(h)s%%").timed is False
    assert compile_access_format("%(L)s").timed is True


@pytest.mark.parametrize("server", SERVERS)
def test_json_records_keep_the_request_fields(tmp_path: Path, server: str) -> None:
    options = ("--access-log-format", "%(m)s %(U)s %(s)s", "--request-id-header", "X-Request-Id",
               "--log-format", "json")  # fmt: skip
    with serving(tmp_path, server, *options) as (port, log):
        httpx.get(f"http://127.0.0.1:{port}/json", headers={"X-Request-Id": "r-1"}, timeout=10)
        log.wait_for("/json")
        records = [json.loads(line) for line in log.text.splitlines()]
    (access,) = [r for r in records if r["logger"] == "tether.access"]
    assert access["message"] == "GET /json 201"
    assert access["request_id"] == "r-1"
