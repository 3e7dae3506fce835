"""Many clients, few upstream connections: each client gets its own response, whole.

The proxies keep idle upstream connections (nginx ``keepalive``, HAProxy ``http-reuse
always``), so requests from different clients follow one another on one Tether connection.
The app answers with what it saw of each request (the id the client put in the query and in
``X-Request-Id``, the body's length and SHA-256) and, for ``?echo``, the body itself: a byte
of one request showing up in another's answer fails the test.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.proxies.helpers import Stack

CLIENTS = 8
REQUESTS_PER_CLIENT = 24

pytestmark = pytest.mark.timeout(90)


def _received_per_connection(ports: list[int]) -> list[int]:
    """Bytes received so far by each open connection the Tether processes on ``ports`` hold."""
    command = ["ss", "-Htin", "state", "established"]
    out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=10).stdout
    received = []
    for head, info in re.findall(r"^(\S.*)\n((?:\s.*\n?)*)", out, re.MULTILINE):
        local = head.split()[-2]
        if any(local == f"127.0.0.1:{port}" for port in ports):
            found = re.search(r"bytes_received:(\d+)", info)
            received.append(int(found[1]) if found else 0)
    return received


def _check(response: httpx.Response, ident: str, body: bytes, echo: bool) -> None:
    assert response.status_code == 200, (ident, response.status_code, response.text[:200])
    head, _, rest = response.content.partition(b"\n")
    info: dict[str, Any] = json.loads(head)
    assert info["query"].split("&")[0] == f"id={ident}", (ident, info)
    assert info["x-request-id"] == ident, (ident, info)
    assert (info["length"], info["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
    assert rest == (body if echo else b""), ident


def _pieces(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), 3000):
        yield body[start : start + 3000]


def _client(url: str, number: int, failures: list[str]) -> None:
    rng = random.Random(number)
    # Half the clients keep their connection to the proxy, half open one per request.
    keep = number % 2 == 0
    with httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=keep)) as client:
        for n in range(REQUESTS_PER_CLIENT):
            ident = f"c{number}-r{n}"
            headers = {"X-Request-Id": ident}
            kind = (number + n) % 4
            body = rng.randbytes(rng.choice((0, 1, 700, 20_000, 100_000)))
            try:
                if kind == 0:
                    response = client.get(f"{url}/get?id={ident}", headers=headers)
                    _check(response, ident, b"", False)
                elif kind == 1:  # Content-Length both ways
                    response = client.post(
                        f"{url}/cl?id={ident}&echo", content=body, headers=headers
                    )
                    _check(response, ident, body, True)
                elif kind == 2:  # chunked both ways
                    response = client.post(
                        f"{url}/te?id={ident}&echo&chunked", content=_pieces(body), headers=headers
                    )
                    _check(response, ident, body, True)
                else:  # chunked response to a Content-Length upload, not echoed
                    response = client.put(
                        f"{url}/put?id={ident}&chunked", content=body, headers=headers
                    )
                    _check(response, ident, body, False)
            except (AssertionError, httpx.HTTPError) as exc:
                failures.append(f"{ident}: {exc!r}")


def test_interleaved_clients_each_get_their_own_response(deployed: Stack) -> None:
    failures: list[str] = []
    threads = [
        threading.Thread(target=_client, args=(deployed.url, number, failures))
        for number in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert failures == [], failures[:5]
    assert not any(thread.is_alive() for thread in threads)


def test_one_upstream_connection_carries_many_clients(deployed: Stack) -> None:
    if shutil.which("ss") is None:
        pytest.skip("needs ss (iproute2) to read the connections' byte counters")
    # Forty clients, one request each, each on its own connection to the proxy...
    with httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        for n in range(40):
            response = client.get(f"{deployed.url}/one?id=p{n}", headers={"X-Request-Id": f"p{n}"})
            _check(response, f"p{n}", b"", False)
    # ...and the Tether side holds connections that received several of them.
    head = len(b"GET /one?id=p10 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    received = _received_per_connection(deployed.backends)
    assert received and max(received) >= 5 * head, received


def test_a_large_upload_streams_through(deployed: Stack) -> None:
    body = random.Random(7).randbytes(8 << 20)
    response = httpx.post(
        f"{deployed.url}/upload?id=big", content=_pieces(body), headers={"X-Request-Id": "big"},
        timeout=60,
    )  # fmt: skip
    _check(response, "big", body, False)
