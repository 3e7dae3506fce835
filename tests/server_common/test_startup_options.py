"""The start-up options uvicorn and gunicorn users type: --env-file, --log-config,
--ssl-version, --reload-include/--reload-exclude, --interface (ASGI 2 apps), and WebSocket pings
on by default."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.processes import LogLines, free_port, reaped, spawn
from tether_asyncio._cli import build_parser as asyncio_parser
from tether_asyncio._config import Config, load_app
from tether_server.reload_watch import FileWatcher
from tether_server.startup import ConfigError, load_env_file
from tether_threaded._cli import build_parser as threaded_parser

ENV_APP = """
import os

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = os.environ.get("GREETING", "unset").encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def wsgi(environ, start_response):
    body = os.environ.get("GREETING", "unset").encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""

ASGI2_APP = """
class App:
    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        if self.scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"5")]})
        await send({"type": "http.response.body", "body": b"asgi2"})
"""


def test_env_file_lines(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(
        "# comment\nA=1\nexport B = two words\nC='quoted # not a comment'\nD=\"x\"\n"
        "E=value # comment\nKEEP=new\n\n"
    )
    env = {"KEEP": "old"}
    load_env_file(str(path), env)
    assert env == {
        "A": "1", "B": "two words", "C": "quoted # not a comment", "D": "x", "E": "value",
        "KEEP": "old",
    }  # fmt: skip
    path.write_text("not a pair\n")
    with pytest.raises(ConfigError, match=":1: not KEY=VALUE"):
        load_env_file(str(path), {})
    with pytest.raises(ConfigError, match="--env-file"):
        load_env_file(str(tmp_path / "missing"), {})


def test_env_file_and_log_config_reach_the_served_app(tmp_path: Path) -> None:
    (tmp_path / "envapp.py").write_text(ENV_APP)
    (tmp_path / ".env").write_text("GREETING=hello from .env\n")
    (tmp_path / "logging.json").write_text(
        json.dumps(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {"f": {"format": "CUSTOM %(name)s %(message)s"}},
                "handlers": {"h": {"class": "logging.StreamHandler", "formatter": "f"}},
                "loggers": {"tether": {"handlers": ["h"], "level": "INFO", "propagate": False}},
            }
        )
    )
    port = free_port()
    proc = spawn("tether_asyncio", tmp_path, "serve", "envapp:app", "--port", str(port),
                 "--env-file", ".env", "--log-config", "logging.json")  # fmt: skip
    with reaped(proc):
        log = LogLines(proc)
        log.wait_for("CUSTOM tether.error")
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text == "hello from .env"
        log.wait_for("CUSTOM tether.access")
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


@pytest.mark.parametrize("which", ["asyncio", "threaded"])
def test_ssl_version_and_ping_defaults(which: str) -> None:
    def parse(*args: str):  # type: ignore[no-untyped-def]
        if which == "asyncio":
            return asyncio_parser().parse_args(["serve", "a:b", *args])
        return threaded_parser().parse_args(["a:b", *args])

    assert parse().ssl_version == "TLSv1.2"
    assert parse("--ssl-version", "TLSv1.3").ssl_version == "TLSv1.3"
    assert parse("--ssl-version", "17").ssl_version == "TLSv1.2"  # uvicorn's number
    assert parse().ws_ping_interval == 20.0  # on by default, as uvicorn
    with pytest.raises(SystemExit):
        parse("--ssl-version", "TLSv1")


def test_ssl_version_tls13_refuses_a_tls12_client(tmp_path: Path) -> None:
    if subprocess.run(["which", "openssl"], capture_output=True, check=False).returncode:
        pytest.skip("openssl is not installed")
    from tests.adversarial._servers import WSGI_OK_APP, make_certificate, tether_threaded

    cert, key = make_certificate(tmp_path)
    options = ("--ssl-certfile", str(cert), "--ssl-keyfile", str(key), "--ssl-version", "TLSv1.3")
    with tether_threaded(tmp_path, *options, app=WSGI_OK_APP) as server:
        old = ssl.create_default_context()
        old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"https://127.0.0.1:{server.port}/", verify=old, timeout=5)
        assert httpx.get(f"https://127.0.0.1:{server.port}/", verify=False, timeout=5).text == "ok"


def test_reload_include_and_exclude(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("")
    (tmp_path / "settings.toml").write_text("")
    (tmp_path / "skip_me.py").write_text("")
    (tmp_path / ".hidden.py").write_text("")
    watcher = FileWatcher([str(tmp_path)], include=["*.toml"], exclude=["skip_*.py"])
    seen = set(watcher._scan())
    assert seen == {str(tmp_path / "app.py"), str(tmp_path / "settings.toml")}
    (tmp_path / "settings.toml").write_text("changed = 1")
    assert watcher.changed() == str(tmp_path / "settings.toml")


def test_asgi2_app_is_served(tmp_path: Path) -> None:
    (tmp_path / "asgi2app.py").write_text(ASGI2_APP)
    port = free_port()
    proc = spawn("tether_asyncio", tmp_path, "serve", "asgi2app:App", "--port", str(port))
    with reaped(proc):
        LogLines(proc).wait_for(f":{port}")
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text == "asgi2"
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_interface_is_recognised_like_uvicorn(tmp_path: Path) -> None:
    (tmp_path / "asgi2app.py").write_text(ASGI2_APP)
    with pytest.raises(ConfigError, match="not an ASGI 3"):
        load_app(Config(app="asgi2app:App", app_dir=str(tmp_path), interface="asgi3"))
    assert load_app(Config(app="asgi2app:App", app_dir=str(tmp_path))) is not None


LOG_YAML = """
version: 1
disable_existing_loggers: false
formatters:
  f: {format: "YAMLCFG %(name)s %(message)s"}
handlers:
  h: {class: logging.StreamHandler, formatter: f}
loggers:
  tether: {handlers: [h], level: INFO, propagate: false}
"""

LOG_INI = """
[loggers]
keys=root,tether

[handlers]
keys=h

[formatters]
keys=f

[logger_root]
level=WARNING
handlers=

[logger_tether]
level=INFO
handlers=h
qualname=tether
propagate=0

[handler_h]
class=StreamHandler
formatter=f
args=(sys.stderr,)

[formatter_f]
format=INICFG %(name)s %(message)s
"""


@pytest.mark.parametrize(
    ("which", "name", "text", "mark"),
    [
        ("tether_asyncio", "logging.yaml", LOG_YAML, "YAMLCFG"),
        ("tether_threaded", "logging.ini", LOG_INI, "INICFG"),
    ],
)
def test_log_config_in_yaml_and_ini(
    tmp_path: Path, which: str, name: str, text: str, mark: str
) -> None:
    """--log-config takes a YAML dictConfig and an INI fileConfig too (as uvicorn does), on a
    real served request: the access line comes out in the file's format."""
    (tmp_path / "envapp.py").write_text(ENV_APP)
    (tmp_path / ".env").write_text("GREETING=hi\n")
    (tmp_path / name).write_text(text)
    port = free_port()
    app = "envapp:app" if which == "tether_asyncio" else "envapp:wsgi"
    head = ["serve", app] if which == "tether_asyncio" else [app]
    proc = spawn(which, tmp_path, *head, "--port", str(port), "--env-file", ".env",
                 "--log-config", name)  # fmt: skip
    with reaped(proc):
        log = LogLines(proc)
        log.wait_for(f"{mark} tether.error")
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text == "hi"
        log.wait_for(f"{mark} tether.access")
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
