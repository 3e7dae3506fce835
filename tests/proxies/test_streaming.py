"""Server-sent events through the proxies arrive as they are sent, not when the stream ends.

The app sends a first event, then holds the stream open until the test creates a release file
(or 5 s pass), then sends a last event saying whether it was released. A proxy that buffered
the response would deliver nothing until the end: the test would never create the file, and
the last event would say ``released=False``.

nginx compresses event streams (``gzip_types`` in examples/deploy/nginx.conf, as deployments
often do): that is where buffering shows. With ``proxy_ignore_headers X-Accel-Buffering``
added to the template, this test fails for nginx (checked by hand); without gzip, nginx 1.22
happened to pass the first event on promptly even while buffering.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.proxies.helpers import Stack

pytestmark = pytest.mark.timeout(60)


def test_events_pass_unbuffered(deployed: Stack) -> None:
    token = uuid.uuid4().hex
    url = f"{deployed.url}/sse?{token}"
    with httpx.Client(timeout=10) as client, client.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        if deployed.proxy == "nginx":
            assert response.headers["content-encoding"] == "gzip"
        lines = response.iter_lines()
        assert next(lines) == "event: first"
        assert next(lines) == "data: hello"
        # Both backends share the directory the app polls.
        (deployed.tether_dir / f"release-{token}").touch()
        rest = list(lines)
    assert "event: last" in rest and "data: released=True" in rest, rest
