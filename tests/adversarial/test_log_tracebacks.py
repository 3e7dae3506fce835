"""A client's line break in an application's exception message does not forge a log record.

An application that names what it was given in its exception (``ValueError(f"no route for
{path}")``) puts a client's text in the traceback the server logs. The path is where a client
gets a line break in: ``%0A`` decodes to LF. The text log escaped the controls a terminal acts
on in tracebacks but kept LF, a traceback's own line break, so ``/a%0AINFO:%20...`` wrote a
line that reads as a record of its own. Now an exception's message and notes are one line
each (chained and grouped exceptions too); the traceback's frames keep their lines.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adversarial._servers import exchange, tether_serve, tether_threaded

FORGED = "INFO: 203.0.113.9 - GET /admin 200"
REQUEST = b"GET /a%0AINFO:%20203.0.113.9%20-%20GET%20/admin%20200 HTTP/1.1\r\nHost: x\r\n\r\n"

RAISING_ASGI = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    try:
        raise KeyError(scope["path"])
    except KeyError as exc:
        raise ValueError(f"no route for {scope['path']}") from exc
"""

RAISING_WSGI = """
def app(environ, start_response):
    path = environ["PATH_INFO"].encode("latin-1").decode("utf-8")
    raise ExceptionGroup("handlers failed", [ValueError(f"no route for {path}")])
"""


@pytest.mark.parametrize("kind", ["asyncio", "threaded"])
def test_a_line_break_in_an_exception_message_stays_in_its_line(kind: str, tmp_path: Path) -> None:
    if kind == "asyncio":
        context = tether_serve(tmp_path, app=RAISING_ASGI)
    else:
        context = tether_threaded(tmp_path, app=RAISING_WSGI)
    with context as server:
        assert exchange(server, REQUEST).startswith(b"HTTP/1.1 500 ")
    text = server.log.read_text()  # the server has stopped: its log is whole
    lines = text.splitlines()
    assert any("Traceback (most recent call last):" in line for line in lines), text
    assert any("no route for /a\\x0a" + FORGED in line for line in lines), text
    # No line of the log starts with the forged record, and frames keep their own lines.
    assert not any(line.startswith(FORGED) for line in lines), text
    assert any(line.lstrip(" |").startswith('File "') for line in lines), text
