"""tether.serving_screen: the answers before admission, and their order."""

from __future__ import annotations

import json

from tether.health import Probe
from tether.serving_screen import Screen


def _never() -> tuple[bool, int, int]:
    raise AssertionError("the server's status is read only for a probe")


class TestActive:
    def test_off_without_probes_or_limit(self) -> None:
        screen = Screen(None)
        assert not screen.active
        assert screen.prefix == b""
        assert screen.probe(b"/_tether/live") is None

    def test_on_with_a_prefix(self) -> None:
        screen = Screen("/_tether/")
        assert screen.active
        assert screen.prefix == b"/_tether"  # the trailing slash is the option's, not the path's
        assert screen.probe(b"/_tether/ready") is Probe.READY

    def test_on_with_a_concurrency_limit(self) -> None:
        assert Screen(None, limit_concurrency=4).active


class TestOrder:
    def test_a_probe_comes_first_even_for_connect(self) -> None:
        screen = Screen("/_tether")
        answer = screen.answer(b"CONNECT", Probe.LIVE, lambda: (False, 0, 0))
        assert answer is not None
        assert answer[0].status_code == 200

    def test_connect_gets_501(self) -> None:
        answer = Screen(None).answer(b"CONNECT", None, _never)
        assert answer is not None
        assert answer[0].status_code == 501

    def test_other_requests_go_on_to_admission(self) -> None:
        assert Screen("/_tether", limit_concurrency=1).answer(b"GET", None, _never) is None


class TestReadiness:
    def test_reports_against_the_screens_limits(self) -> None:
        screen = Screen("/_tether", limit_concurrency=2, limit_connections=10)
        answer = screen.answer(b"GET", Probe.READY, lambda: (False, 2, 3))
        assert answer is not None
        response, body = answer
        assert response.status_code == 503
        assert json.loads(body)["reason"] == "at --limit-concurrency"

    def test_draining_is_not_ready(self) -> None:
        answer = Screen("/_tether").answer(b"GET", Probe.READY, lambda: (True, 0, 0))
        assert answer is not None
        assert json.loads(answer[1]) == {"status": "unavailable", "reason": "draining"}

    def test_started_once_serving(self) -> None:
        answer = Screen("/_tether").answer(b"HEAD", Probe.STARTUP, lambda: (True, 0, 0))
        assert answer is not None
        assert answer[0].status_code == 200
