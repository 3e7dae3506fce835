"""tether.health: which path is which probe, and what each answers in each server state."""

from __future__ import annotations

import json

import pytest

from tether.health import HealthState, Probe, health_response, probe_for


@pytest.mark.parametrize(
    ("path", "probe"),
    [
        (b"/_tether/live", Probe.LIVE),
        (b"/_tether/ready", Probe.READY),
        (b"/_tether/startup", Probe.STARTUP),
        (b"/_tether/other", None),
        (b"/_tether", None),
        (b"/_tetherx/live", None),
        (b"/app/_tether/live", None),
        (b"/_tether/live/", None),
    ],
)
def test_probe_for(path: bytes, probe: Probe | None) -> None:
    assert probe_for(path, b"/_tether") is probe
    assert probe_for(path, b"") is None  # no prefix: the feature is off


@pytest.mark.parametrize(
    ("state", "live", "startup", "ready", "reason"),
    [
        (HealthState(started=False), 200, 503, 503, "starting"),
        (HealthState(started=True), 200, 200, 200, None),
        (HealthState(started=True, draining=True), 200, 200, 503, "draining"),
        (
            HealthState(True, in_flight=4, limit_concurrency=4),
            200,
            200,
            503,
            "at --limit-concurrency",
        ),
        (
            HealthState(True, connections=9, limit_connections=9),
            200,
            200,
            503,
            "at --limit-connections",
        ),
        (HealthState(True, in_flight=3, limit_concurrency=4), 200, 200, 200, None),
    ],
)
def test_answers(
    state: HealthState, live: int, startup: int, ready: int, reason: str | None
) -> None:
    for probe, status in ((Probe.LIVE, live), (Probe.STARTUP, startup), (Probe.READY, ready)):
        response, body = health_response(probe, state)
        assert response.status_code == status
        assert dict(response.headers)[b"content-length"] == str(len(body)).encode()
        document = json.loads(body)
        assert document["status"] == ("ok" if status == 200 else "unavailable")
    _, body = health_response(Probe.READY, state)
    assert json.loads(body).get("reason") == reason
