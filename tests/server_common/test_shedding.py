"""tether_server.shedding: a shed 503's Retry-After, drawn from --retry-after-window."""

from __future__ import annotations

import pytest

from tether_server.config import ServerConfig
from tether_server.shedding import DEFAULT_WINDOW, RetryAfter


@pytest.mark.parametrize(("window", "low"), [(1, 1), (2, 1), (3, 2), (10, 5), (41, 21)])
def test_delays_cover_the_second_half_of_the_window(window: int, low: int) -> None:
    retry_after = RetryAfter(window)
    delays = {retry_after() for _ in range(500)}
    # Every whole second from the middle to the end, and nothing else ((1/21)^500 ~ 0 odds
    # that a value is never drawn).
    assert delays == set(range(low, window + 1))


def test_the_response_is_a_503_with_the_delay() -> None:
    response, body = RetryAfter(1).response()
    assert response.status_code == 503
    assert (b"retry-after", b"1") in list(response.headers)
    assert body == b"Service Unavailable\n"


def test_a_window_under_one_second_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1 second"):
        RetryAfter(0)


def test_the_config_carries_the_window() -> None:
    assert ServerConfig().retry_after.window == DEFAULT_WINDOW
    assert ServerConfig(retry_after_window=30).retry_after.window == 30
