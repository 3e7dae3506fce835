"""Fixtures: two Tether processes of each server behind nginx and behind HAProxy.

``deployed`` is parametrized over both proxies and both servers and scoped to the session, so
the four stacks start once each (pytest groups the tests by parameter).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.proxies.helpers import PROXIES, SERVERS, Stack, stack


@pytest.fixture(
    scope="session",
    params=[(proxy, server) for proxy in PROXIES for server in SERVERS],
    ids=[f"{proxy}-{server}" for proxy in PROXIES for server in SERVERS],
)
def deployed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A proxy in front of two Tether processes, with upstream keep-alive on."""
    proxy, server = request.param
    with stack(proxy, server, tmp_path_factory.mktemp(f"{proxy}-{server}")) as built:
        yield built
