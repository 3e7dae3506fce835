"""tether.serving_drain: which connections a graceful shutdown closes, and when."""

from __future__ import annotations

import pytest

from tether.serving_cycle import RULES
from tether.serving_drain import AtDrain, Drain


class TestAtStart:
    @pytest.mark.parametrize(
        ("websocket", "idle", "requests", "expected"),
        [
            (True, False, 1, AtDrain.GOING_AWAY),  # WebSocket sessions go away
            (False, True, 3, AtDrain.CLOSE),  # idle between requests: closed now
            (False, True, 0, AtDrain.FINISH),  # fresh: waits for its first request
        ],
    )
    def test_what_each_connection_gets(
        self, websocket: bool, idle: bool, requests: int, expected: AtDrain
    ) -> None:
        drain = Drain(0.0)
        assert drain.at_start(websocket=websocket, idle=idle, requests=requests) is expected

    def test_a_request_in_progress_finishes(self) -> None:
        drain = Drain(0.0)
        assert drain.at_start(websocket=False, idle=False, requests=1) is AtDrain.FINISH
        assert drain.closing  # and its response ends the connection

    def test_handover_keeps_idle_connections(self) -> None:
        drain = Drain(0.0, handover=True)
        assert drain.at_start(websocket=False, idle=True, requests=3) is AtDrain.FINISH
        assert not drain.closes_idle(3)
        assert not drain.closing
        # WebSocket sessions go away all the same.
        assert drain.at_start(websocket=True, idle=False, requests=1) is AtDrain.GOING_AWAY


class TestFreshGrace:
    def test_due_once_after_the_grace(self) -> None:
        drain = Drain(10.0)
        assert not drain.fresh_due(10.0)
        assert drain.fresh_due(10.0 + RULES.fresh_grace_seconds)
        assert not drain.fresh_due(100.0)  # once only

    def test_no_grace_to_end_when_handing_over(self) -> None:
        assert not Drain(10.0, handover=True).fresh_due(1000.0)


class TestGracefulTimeout:
    def test_overdue_after_the_timeout(self) -> None:
        drain = Drain(10.0, grace=5.0)
        assert drain.deadline == 15.0
        assert not drain.overdue(14.9)
        assert drain.overdue(15.0)

    def test_no_timeout_waits_for_ever(self) -> None:
        assert not Drain(10.0).overdue(1e12)
