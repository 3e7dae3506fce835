"""Request ids, trace ids and added response fields (issue 15), on both servers' command lines:
``--request-id-header``, ``--trace-context``, ``--header`` and ``--security-headers``."""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.processes import LogLines, free_port, reaped, spawn
from tether_server.tagging import (
    HSTS,
    MAX_REQUEST_ID,
    Tagger,
    new_request_id,
    parse_header_option,
)

# Both apps answer with what the server handed them: "request id|trace id|tracestate keys".
ASGI_APP = """
async def app(scope, receive, send):
    ext = scope.get("extensions") or {}
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": str(ext.get("tether.request_id"))})
        await send({"type": "websocket.close", "code": 1000})
        return
    if scope["type"] != "http":
        return
    trace = ext.get("tether.trace") or {}
    body = "|".join((str(ext.get("tether.request_id")), str(trace.get("trace_id")),
                     ",".join(k for k, _ in trace.get("tracestate", ())))).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    if scope["path"] == "/own":
        headers += [(b"x-frame-options", b"DENY"), (b"x-request-id", b"app-made")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
"""

WSGI_APP = """
def app(environ, start_response):
    if "tether.websocket" in environ:
        ws = environ["tether.websocket"].accept()
        ws.send(str(environ.get("tether.request_id")))
        ws.close(1000)
        return []
    trace = environ.get("tether.trace") or {}
    body = "|".join((str(environ.get("tether.request_id")), str(trace.get("trace_id")),
                     ",".join(k for k, _ in trace.get("tracestate", ())))).encode()
    headers = [("Content-Length", str(len(body)))]
    if environ["PATH_INFO"] == "/own":
        headers += [("X-Frame-Options", "DENY"), ("X-Request-Id", "app-made")]
    start_response("200 OK", headers)
    return [body]
"""

SERVERS = {
    "asyncio": ("tether_asyncio", "serve", "tagapp:app"),
    "threaded": ("tether_threaded", "tagapp:app"),
}

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@contextmanager
def serving(tmp_path: Path, server: str, *options: str) -> Iterator[tuple[str, LogLines]]:
    """A server of kind ``server`` with ``options``; yields its base URL and log, then stops
    it with SIGTERM and checks that it exits cleanly."""
    (tmp_path / "tagapp.py").write_text(ASGI_APP if server == "asyncio" else WSGI_APP)
    port = free_port()
    module, *rest = SERVERS[server]
    proc = spawn(module, tmp_path, *rest, "--port", str(port), *options)
    with reaped(proc):
        log = LogLines(proc)
        log.wait_for(f":{port}")
        yield f"http://127.0.0.1:{port}", log
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.text


@pytest.mark.parametrize("server", SERVERS)
def test_request_id_taken_echoed_logged(tmp_path: Path, server: str) -> None:
    with serving(tmp_path, server, "--request-id-header", "X-Request-Id") as (url, log):
        given = httpx.get(f"{url}/a", headers={"X-Request-Id": "req-42.abc"}, timeout=10)
        assert given.headers["x-request-id"] == "req-42.abc"
        assert given.text.split("|")[0] == "req-42.abc"
        log.wait_for("request_id=req-42.abc")
        # Not a token (a space, a quote), or too long: replaced by a fresh id.
        for bad in ('a "quoted" id', "x" * 129):
            made = httpx.get(f"{url}/b", headers={"X-Request-Id": bad}, timeout=10)
            new = made.headers["x-request-id"]
            assert len(new) == 32 and int(new, 16) >= 0 and made.text.split("|")[0] == new
            log.wait_for(f"request_id={new}")
        fresh = httpx.get(f"{url}/c", timeout=10).headers["x-request-id"]
        assert len(fresh) == 32 and fresh != new
        # An id the app set itself wins.
        own = httpx.get(f"{url}/own", headers={"X-Request-Id": "mine"}, timeout=10)
        assert own.headers.get_list("x-request-id") == ["app-made"]


@pytest.mark.parametrize("server", SERVERS)
def test_websocket_handshake_carries_the_request_id(tmp_path: Path, server: str) -> None:
    from websockets.sync.client import connect

    with serving(tmp_path, server, "--request-id-header", "X-Request-Id") as (url, log):
        target = url.replace("http://", "ws://") + "/ws"
        with connect(target, additional_headers={"X-Request-Id": "ws-7"}) as ws:
            assert ws.response.headers["x-request-id"] == "ws-7"
            assert ws.recv(timeout=10) == "ws-7"
        log.wait_for("request_id=ws-7")


@pytest.mark.parametrize("server", SERVERS)
def test_trace_id_in_json_access_line_and_app(tmp_path: Path, server: str) -> None:
    options = ("--trace-context", "--request-id-header", "X-Request-Id", "--log-format", "json")
    with serving(tmp_path, server, *options) as (url, log):
        headers = {"traceparent": TRACEPARENT, "tracestate": "congo=t61rcWkgMzE,rojo=1"}
        answer = httpx.get(f"{url}/traced", headers=headers, timeout=10)
        assert answer.text.split("|")[1:] == [TRACE_ID, "congo,rojo"]
        # An invalid traceparent (uppercase hex) is no trace at all.
        bad = httpx.get(f"{url}/bad", headers={"traceparent": TRACEPARENT.upper()}, timeout=10)
        assert bad.text.split("|")[1] == "None"
        log.wait_for("/bad")
        records = [json.loads(line) for line in log.text.splitlines()]
    access = {r["message"].split()[3]: r for r in records if r["logger"] == "tether.access"}
    assert access["/traced"]["trace_id"] == TRACE_ID
    assert access["/traced"]["request_id"] == answer.headers["x-request-id"]
    assert "trace_id" not in access["/bad"]
    assert access["/bad"]["request_id"] == bad.headers["x-request-id"]


@pytest.mark.parametrize("server", SERVERS)
def test_added_and_security_headers(tmp_path: Path, server: str) -> None:
    options = ("--header", "X-Served-By: edge-1", "--header", "Cache-Control:no-store",
               "--security-headers")  # fmt: skip
    with serving(tmp_path, server, *options) as (url, _):
        plain = httpx.get(f"{url}/x", timeout=10).headers
        assert plain["x-served-by"] == "edge-1"
        assert plain["cache-control"] == "no-store"
        assert plain["x-content-type-options"] == "nosniff"
        assert plain["referrer-policy"] == "strict-origin-when-cross-origin"
        assert plain["x-frame-options"] == "SAMEORIGIN"
        assert "strict-transport-security" not in plain  # plain HTTP: no HSTS
        assert "x-request-id" not in plain
        own = httpx.get(f"{url}/own", timeout=10).headers
        assert own.get_list("x-frame-options") == ["DENY"]  # the app's value wins


@pytest.mark.parametrize("server", SERVERS)
def test_bad_header_option_is_one_line(tmp_path: Path, server: str) -> None:
    (tmp_path / "tagapp.py").write_text(WSGI_APP)
    module, *rest = SERVERS[server]
    proc = spawn(module, tmp_path, *rest, "--header", "X-Bad\r\nInjected: 1")
    with reaped(proc):
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "argument --header: not a valid field name" in err and "Traceback" not in err


@pytest.mark.parametrize("server", SERVERS)
def test_hsts_only_over_tls(tmp_path: Path, server: str) -> None:
    from tests.adversarial._servers import make_certificate

    cert, key = make_certificate(tmp_path)
    options = ("--security-headers", "--ssl-certfile", str(cert), "--ssl-keyfile", str(key))
    (tmp_path / "tagapp.py").write_text(ASGI_APP if server == "asyncio" else WSGI_APP)
    port = free_port()
    module, *rest = SERVERS[server]
    proc = spawn(module, tmp_path, *rest, "--port", str(port), *options)
    with reaped(proc):
        log = LogLines(proc)
        log.wait_for(f"https://127.0.0.1:{port}")
        headers = httpx.get(f"https://127.0.0.1:{port}/", verify=False, timeout=10).headers
        assert headers["strict-transport-security"] == "max-age=31536000"
        assert headers["x-content-type-options"] == "nosniff"


FAILING = {
    "asyncio": """
async def app(scope, receive, send):
    if scope["type"] == "http":
        raise RuntimeError("boom")
""",
    "threaded": """
def app(environ, start_response):
    raise RuntimeError("boom")
""",
}


@pytest.mark.parametrize("server", SERVERS)
def test_request_id_on_error_line_and_canned_500(tmp_path: Path, server: str) -> None:
    (tmp_path / "tagapp.py").write_text(FAILING[server])
    port = free_port()
    module, *rest = SERVERS[server]
    proc = spawn(module, tmp_path, *rest, "--port", str(port), "--request-id-header",
                 "X-Request-Id", "--header", "X-Served-By: edge-1")  # fmt: skip
    with reaped(proc):
        log = LogLines(proc)
        log.wait_for(f":{port}")
        answer = httpx.get(f"http://127.0.0.1:{port}/", headers={"X-Request-Id": "r-1"}, timeout=10)
        assert answer.status_code == 500
        # The server's own 500 carries the id and the added field too.
        assert answer.headers["x-request-id"] == "r-1"
        assert answer.headers["x-served-by"] == "edge-1"
        log.wait_for('" 500 ')
        errors = [line for line in log.text.splitlines() if "xception" in line]
        assert errors and all(line.endswith("request_id=r-1") for line in errors[:1]), log.text
        access = [line for line in log.text.splitlines() if '" 500 ' in line]
        assert access[0].endswith("request_id=r-1")


class TestTagger:
    """The options' rules, without a server."""

    def test_off_is_inactive(self) -> None:
        assert not Tagger().active

    def test_constant_tag_when_nothing_depends_on_the_request(self) -> None:
        tagger = Tagger(headers=[("X-A", "1")])
        assert tagger.tag([]) is tagger.tag([(b"x-request-id", b"z")])
        assert tagger.tag([]).headers == ((b"x-a", b"1"),)

    def test_id_validation(self) -> None:
        tagger = Tagger(request_id_header="X-Request-Id")
        assert tagger.tag([(b"x-request-id", b"a" * MAX_REQUEST_ID)]).request_id == "a" * 128
        for bad in (b"a" * 129, b"", b"a b", b"caf\xc3\xa9", b"a,b", b"a\x7f"):
            made = tagger.tag([(b"x-request-id", bad)]).request_id
            assert made is not None and len(made) == 32 and made != bad.decode("latin-1")

    def test_header_option_wins_over_preset_and_hsts_needs_tls(self) -> None:
        names = dict(Tagger(headers=[("X-Frame-Options", "DENY")], security_headers=True).headers)
        assert names[b"x-frame-options"] == b"DENY" and b"strict-transport-security" not in names
        assert HSTS in Tagger(security_headers=True, tls=True).headers

    def test_new_ids_are_uuid4(self) -> None:
        made = {new_request_id() for _ in range(100)}
        assert len(made) == 100
        assert all(
            uuid.UUID(hex=one).version == 4 and uuid.UUID(hex=one).hex == one for one in made
        )

    def test_request_id_header_option_is_a_field_name(self) -> None:
        from tether_threaded._cli import build_parser

        parser = build_parser()
        assert parser.parse_args(["a:b", "--request-id-header", "X-Id"]).request_id_header == "X-Id"
        for bad in ("X:Y", "X Y", ""):
            with pytest.raises(SystemExit):
                parser.parse_args(["a:b", "--request-id-header", bad])

    def test_header_option_parsing(self) -> None:
        assert parse_header_option("X-A:  b c ") == ("X-A", "b c")
        for bad in ("novalue", ":v", "X A:b", "X-A:b\r\nX-B: c", "X-A:caf\u00e9"):
            with pytest.raises(ValueError):
                parse_header_option(bad)

    def test_trace_entries(self) -> None:
        tag = Tagger(trace_context=True).tag([(b"traceparent", TRACEPARENT.encode())])
        assert tag.log_fields() == {"trace_id": TRACE_ID}
        trace = tag.app_entries()["tether.trace"]
        assert trace["parent_id"] == "00f067aa0ba902b7" and trace["sampled"] is True
