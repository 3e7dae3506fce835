"""The client's address and scheme, as the app sees them through a real proxy.

Everything runs on the loopback network, so the client speaks from 127.0.0.5 (Linux routes the
whole of 127.0.0.0/8 to lo): only the proxy's address, 127.0.0.1, is trusted by the servers
(``--forwarded-allow-ips`` default), and the app must see 127.0.0.5, never 127.0.0.1 (the
proxy itself) nor an address the client made up.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import free_port
from tests.proxies.helpers import PROXIES, SERVERS, Stack, proxy_process, stack

CLIENT = "127.0.0.5"

pytestmark = pytest.mark.timeout(60)


def _seen(url: str, verify: ssl.SSLContext | bool = False, **kwargs: Any) -> dict[str, Any]:
    transport = httpx.HTTPTransport(local_address=CLIENT, verify=verify)
    with httpx.Client(transport=transport, timeout=10) as client:
        response = client.get(url, **kwargs)
    assert response.status_code == 200, response.text
    info: dict[str, Any] = json.loads(response.content.partition(b"\n")[0])
    return info


def test_the_app_sees_the_client_behind_the_proxy(deployed: Stack) -> None:
    info = _seen(deployed.url + "/who")
    assert (info["client"], info["scheme"]) == (CLIENT, "http")
    # The proxy did say where the request came from; the server believed it.
    assert CLIENT in info["x-forwarded-for"]


def test_https_at_the_proxy_is_https_in_the_app(deployed: Stack) -> None:
    context = ssl.create_default_context(cafile=deployed.proxy_dir / "cert.pem")
    info = _seen(deployed.tls_url + "/who", verify=context)
    assert (info["client"], info["scheme"]) == (CLIENT, "https")
    assert info["x-forwarded-proto"] == "https"


def test_a_forged_x_forwarded_for_is_not_believed(deployed: Stack) -> None:
    # The proxy appends the address it saw to what the client sent; the server takes the
    # rightmost hop that is not a trusted proxy, which is the proxy's own entry.
    for forged in ("203.0.113.7", "127.0.0.1", "203.0.113.7, 127.0.0.1", "::1"):
        info = _seen(deployed.url + "/who", headers={"X-Forwarded-For": forged})
        assert info["client"] == CLIENT, (forged, info)


def test_two_proxies_in_a_row_the_client_is_the_right_hop(deployed: Stack, tmp_path: Path) -> None:
    # The other proxy in front of this one (HAProxy -> nginx -> Tether, or nginx -> HAProxy ->
    # Tether), both appending: X-Forwarded-For is "forged, client, outer proxy" and Tether
    # skips the trusted outer proxy's entry, then takes the client's.
    outer = "haproxy" if deployed.proxy == "nginx" else "nginx"
    listen = (free_port(), free_port())
    with proxy_process(outer, listen, [deployed.port], tmp_path / outer):
        url = f"http://127.0.0.1:{listen[0]}/who"
        info = _seen(url, headers={"X-Forwarded-For": "203.0.113.7"})
    hops = [hop.strip() for hop in info["x-forwarded-for"].split(",")]
    assert hops == ["203.0.113.7", CLIENT, "127.0.0.1"], hops
    assert info["client"] == CLIENT


def test_an_unparsable_forged_hop_does_not_hide_the_client(deployed: Stack) -> None:
    info = _seen(deployed.url + "/who", headers={"X-Forwarded-For": "not-an-ip"})
    assert info["x-forwarded-for"].replace(" ", "").split(",")[-1] == CLIENT
    assert info["client"] == CLIENT


def test_a_forged_x_forwarded_proto_is_replaced_by_the_proxy(deployed: Stack) -> None:
    info = _seen(deployed.url + "/who", headers={"X-Forwarded-Proto": "https"})
    assert (info["scheme"], info["x-forwarded-proto"]) == ("http", "http")


@pytest.fixture(
    scope="module",
    params=[(proxy, server) for proxy in PROXIES for server in SERVERS],
    ids=[f"{proxy}-{server}" for proxy in PROXIES for server in SERVERS],
)
def rfc7239(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The example configurations with their ``#rfc7239:`` lines on instead of X-Forwarded-*."""
    proxy, server = request.param
    directory: Path = tmp_path_factory.mktemp(f"rfc7239-{proxy}-{server}")
    with stack(proxy, server, directory, rfc7239=True) as built:
        yield built


def test_rfc7239_forwarded_names_the_client(rfc7239: Stack) -> None:
    info = _seen(rfc7239.url + "/who")
    assert info["forwarded"] == f"for={CLIENT};proto=http"  # the proxy did send it
    assert info["x-forwarded-for"] is None
    assert info["client"] == CLIENT


def test_rfc7239_forged_forwarded_is_not_believed(rfc7239: Stack) -> None:
    for forged in ("for=203.0.113.7", 'for="[::1]"', 'for=junk"x', "for=unknown"):
        info = _seen(rfc7239.url + "/who", headers={"Forwarded": forged})
        assert info["client"] == CLIENT, forged
