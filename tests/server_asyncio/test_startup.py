"""tether_server.startup: the options both servers' command lines share read the same way."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from tether_asyncio._cli import build_parser as asyncio_parser
from tether_server.startup import ConfigError, import_app, trusted_proxies
from tether_threaded._cli import build_parser as threaded_parser


def parse(which: str, *args: str) -> argparse.Namespace:
    if which == "asyncio":
        return asyncio_parser().parse_args(["serve", "app:app", *args])
    return threaded_parser().parse_args(["app:app", *args])


@pytest.mark.parametrize("which", ["asyncio", "threaded"])
@pytest.mark.parametrize(("text", "expected"), [("0", None), ("off", None), ("2.5", 2.5)])
def test_a_zero_ping_interval_means_no_pings(which: str, text: str, expected: float | None) -> None:
    assert parse(which, "--ws-ping-interval", text).ws_ping_interval == expected


@pytest.mark.parametrize("which", ["asyncio", "threaded"])
@pytest.mark.parametrize(("text", "expected"), [("0", 0.0), ("none", None), ("7", 7.0)])
def test_a_zero_grace_means_no_wait(which: str, text: str, expected: float | None) -> None:
    # 0 seconds of grace: in-flight requests are not waited for ("none" waits without end).
    assert parse(which, "--timeout-graceful-shutdown", text).timeout_graceful_shutdown == expected


@pytest.mark.parametrize("which", ["asyncio", "threaded"])
def test_proxy_options(which: str) -> None:
    args = parse(which)
    assert (args.proxy_headers, args.forwarded_allow_ips) == (True, None)
    args = parse(which, "--no-proxy-headers", "--forwarded-allow-ips", "10.0.0.0/8")
    assert (args.proxy_headers, args.forwarded_allow_ips) == (False, "10.0.0.0/8")


def test_trusted_proxies_reads_the_environment_only_without_the_option() -> None:
    env = {"FORWARDED_ALLOW_IPS": "10.0.0.1"}
    from_env = trusted_proxies(True, None, env)
    assert from_env is not None
    assert from_env.trusts("10.0.0.1")
    assert not from_env.trusts("127.0.0.1")
    given = trusted_proxies(True, "127.0.0.1", env)
    assert given is not None
    assert given.trusts("127.0.0.1")
    assert not given.trusts("10.0.0.1")
    default = trusted_proxies(True, None, {})
    assert default is not None
    assert default.trusts("127.0.0.1")
    assert trusted_proxies(False, "*", env) is None
    with pytest.raises(ConfigError, match="--forwarded-allow-ips"):
        trusted_proxies(True, "localhost", {})


def test_a_module_alone_names_its_application_then_its_app(tmp_path: Path) -> None:
    """``tether-threaded mysite.wsgi`` (Django's deployment docs): ``application`` (gunicorn's
    default), else ``app``; a module with neither is a one-line ConfigError."""
    (tmp_path / "both_mod.py").write_text("application = 'the application'\napp = 'the app'\n")
    (tmp_path / "app_mod.py").write_text("app = 'the app'\n")
    (tmp_path / "none_mod.py").write_text("x = 1\n")
    assert import_app("both_mod", app_dir=str(tmp_path)) == "the application"
    assert import_app("app_mod", app_dir=str(tmp_path)) == "the app"
    assert import_app("both_mod:app", app_dir=str(tmp_path)) == "the app"
    with pytest.raises(ConfigError, match='no "application" or "app"'):
        import_app("none_mod", app_dir=str(tmp_path))


@pytest.mark.parametrize("which", ["asyncio", "threaded"])
def test_help_shows_each_default_once_and_every_option_has_help(which: str) -> None:
    parser = asyncio_parser() if which == "asyncio" else threaded_parser()
    if which == "asyncio":
        parser = parser._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    text = parser.format_help()
    # None, an empty string, an empty container (--header, repeatable, starts from []).
    assert not re.search(r"\(default: (None|\[\]|\(\)|\{\}|set\(\)|frozenset\(\))?\)", text)
    for paragraph in text.split("\n  --")[1:]:
        assert paragraph.count("default") <= 1, paragraph
    for action in parser._actions:
        if action.option_strings and action.help is not argparse.SUPPRESS:
            assert action.help, action.option_strings
