"""Both servers' ``--help``: every option says what it does, and its default at most once."""

from __future__ import annotations

import argparse

import pytest

from tether_asyncio._cli import build_parser as asyncio_parser
from tether_threaded._cli import build_parser as threaded_parser


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
        assert "(default: None)" not in text and "(default: )" not in text, f"{where}: {text}"
    rendered = parser.format_help()
    assert "(default: None)" not in rendered and "(default: )" not in rendered


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
    } <= options
