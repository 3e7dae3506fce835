"""Both servers' ``--help``: every option says what it does, and its default at most once."""

from __future__ import annotations

import argparse
import re

import pytest

from tether_asyncio._cli import build_parser as asyncio_parser
from tether_threaded._cli import build_parser as threaded_parser
from tether_threaded._config import Config as ThreadedConfig

#: A default that says nothing: None, an empty string, or an empty list, tuple, dict or set.
NO_VALUE_DEFAULT = re.compile(r"\(default: (None|\[\]|\(\)|\{\}|set\(\)|frozenset\(\))?\)")


def _serve(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices["serve"]  # type: ignore[no-any-return]
    return parser


PARSERS = {"tether serve": _serve(asyncio_parser()), "tether-threaded": threaded_parser()}


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_option_has_help_and_one_default(name: str) -> None:
    parser = PARSERS[name]
    formatter = parser.formatter_class(parser.prog)
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:
            continue
        text = formatter._expand_help(action) if action.help else ""  # type: ignore[attr-defined]
        where = f"{name} {'/'.join(action.option_strings) or action.dest}"
        assert text.strip(), f"{where}: no help"
        assert text.count("default") <= 1, f"{where}: {text}"
        assert not NO_VALUE_DEFAULT.search(text), f"{where}: {text}"
    rendered = parser.format_help()
    assert not NO_VALUE_DEFAULT.search(rendered), rendered


def test_no_value_pattern_catches_what_argparse_prints() -> None:
    """The pattern above matches argparse's own rendering of each empty default."""
    for empty in (None, "", [], (), {}, set(), frozenset()):
        assert NO_VALUE_DEFAULT.search(f"x (default: {empty})"), empty
    assert not NO_VALUE_DEFAULT.search("x (default: 0)")


def test_threaded_body_limit_help_states_the_real_default() -> None:
    """``--limit-request-body`` has no argparse default on tether-threaded, yet the server caps
    bodies at ``Config.max_gathered_body``: the help says so."""
    (action,) = [a for a in PARSERS["tether-threaded"]._actions if a.dest == "max_body_size"]
    assert ThreadedConfig.max_gathered_body == 1 << 30
    assert action.help is not None and "default: 1 GiB" in action.help


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_the_shared_options_are_the_same_on_both(name: str) -> None:
    options = {s for a in PARSERS[name]._actions for s in a.option_strings}
    assert {
        "--limit-requests-per-connection",
        "--limit-max-requests",
        "--limit-max-requests-jitter",
        "--unix-socket-perms",
        "--root-path",
        "--url-prefix",
        "--timeout-write",
        "--timeout-tls-handshake",
        "--ws-max-queue",
    } <= options
