"""tether.serving.TrustedProxies: who may speak for the client, and what they may say."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.serving import TrustedProxies

PEER = ("127.0.0.1", 50000)


def xff(*values: str, proto: tuple[str, ...] = ()) -> list[tuple[bytes, bytes]]:
    headers = [(b"x-forwarded-for", v.encode()) for v in values]
    return headers + [(b"x-forwarded-proto", p.encode()) for p in proto]


def test_a_trusted_peer_gives_the_client_and_scheme() -> None:
    proxies = TrustedProxies()
    assert proxies.resolve(xff("203.0.113.7", proto=("https",)), PEER, "http") == (
        ("203.0.113.7", 0),
        "https",
    )


def test_an_untrusted_peer_is_not_believed() -> None:
    proxies = TrustedProxies("10.0.0.1")
    headers = xff("203.0.113.7", proto=("https",))
    assert proxies.resolve(headers, PEER, "http") == (PEER, "http")


def test_the_rightmost_untrusted_hop_is_the_client() -> None:
    # The client may put anything at the left; only what trusted proxies appended counts.
    proxies = TrustedProxies("127.0.0.1, 10.0.0.0/8")
    headers = xff("1.2.3.4, 203.0.113.7", "10.1.2.3")
    assert proxies.resolve(headers, PEER, "http") == (("203.0.113.7", 0), "http")


def test_all_hops_trusted_gives_the_leftmost() -> None:
    proxies = TrustedProxies("127.0.0.1,10.0.0.0/8")
    assert proxies.resolve(xff("10.0.0.5, 10.0.0.6"), PEER, "http")[0] == ("10.0.0.5", 0)


def test_any_peer_with_a_star_and_unix_sockets_by_name() -> None:
    assert TrustedProxies("*").trusts("198.51.100.1")
    assert TrustedProxies("*").trusts(None)
    assert TrustedProxies("unix").trusts(None)
    assert not TrustedProxies("127.0.0.1").trusts(None)
    assert TrustedProxies("unix").resolve(xff("203.0.113.7"), None, "http") == (
        ("203.0.113.7", 0),
        "http",
    )


def test_ipv6_peers_and_hops() -> None:
    proxies = TrustedProxies("::1")
    assert proxies.resolve(xff("2001:db8::7"), ("::1", 1), "http")[0] == ("2001:db8::7", 0)


@pytest.mark.parametrize(
    "value", ["unknown", "203.0.113.7:4711", "[2001:db8::7]", "203.0.113.7, ", "203.0.113.7, x"]
)
def test_a_forwarded_for_that_does_not_parse_is_ignored_whole(value: str) -> None:
    assert TrustedProxies().resolve(xff(value), PEER, "http") == (PEER, "http")


@pytest.mark.parametrize(
    ("hops", "protos"),
    [((), ("ftp",)), ((), ("https, http",)), (("203.0.113.7, 10.0.0.1",), ("https, http, http",))],
)
def test_a_forwarded_proto_that_does_not_fit_is_ignored(
    hops: tuple[str, ...], protos: tuple[str, ...]
) -> None:
    assert TrustedProxies().resolve(xff(*hops, proto=protos), PEER, "http")[1] == "http"


def test_one_proto_per_hop_takes_the_chosen_hops() -> None:
    proxies = TrustedProxies("127.0.0.1,10.0.0.1")
    headers = xff("203.0.113.7, 10.0.0.1", proto=("https, http",))
    assert proxies.resolve(headers, PEER, "http") == (("203.0.113.7", 0), "https")


def test_repeated_field_lines_are_one_list() -> None:
    proxies = TrustedProxies("127.0.0.1,10.0.0.1")
    headers = xff("203.0.113.7", "10.0.0.1")
    assert proxies.resolve(headers, PEER, "http")[0] == ("203.0.113.7", 0)


@pytest.mark.parametrize("spec", ["localhost", "10.0.0.0/33", "1.2.3.4.5"])
def test_bad_entries_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        TrustedProxies(spec)


@given(st.binary(max_size=64), st.binary(max_size=16))
def test_any_header_bytes_give_an_answer(forwarded: bytes, proto: bytes) -> None:
    headers = [(b"x-forwarded-for", forwarded), (b"x-forwarded-proto", proto)]
    client, scheme = TrustedProxies("*").resolve(headers, PEER, "http")
    assert scheme in ("http", "https")
    assert client is not None


def test_networks_and_single_addresses() -> None:
    proxies = TrustedProxies("10.0.0.0/8, 192.0.2.1, ::1")
    for i in range(300):
        assert proxies.trusts(f"10.{i // 256 % 256}.{i % 256}.1")
        assert not proxies.trusts(f"192.0.{i // 256 % 256}.{i % 256 + 2}")
    assert proxies.trusts("192.0.2.1")
    assert proxies.trusts("::1") and proxies.trusts("0:0:0:0:0:0:0:1")
    assert not proxies.trusts("not an address")


@pytest.mark.parametrize("forged", ["junk", "unknown", "203.0.113.7:4711", "x, y"])
def test_a_forged_unparsable_hop_left_of_the_proxies_does_not_hide_the_client(
    forged: str,
) -> None:
    """The client sends ``X-Forwarded-For: junk``; the trusted proxy appends the address it
    saw. Ignoring the whole field would make the client look like the proxy (127.0.0.1)."""
    proxies = TrustedProxies("127.0.0.1")
    assert proxies.resolve(xff(f"{forged}, 198.51.100.9"), PEER, "http")[0] == ("198.51.100.9", 0)
    chain = TrustedProxies("127.0.0.1,10.0.0.0/8")
    headers = xff(f"{forged}, 198.51.100.9, 10.0.0.3")
    assert chain.resolve(headers, PEER, "http")[0] == ("198.51.100.9", 0)


def test_no_memo_of_answers_is_kept() -> None:
    """Nothing is remembered per host: a table filled from hops would be state shared between
    clients (and a timing oracle)."""
    proxies = TrustedProxies("127.0.0.1,10.0.0.0/8")
    for i in range(2000):
        proxies.resolve(xff(f"198.51.{i // 250}.{i % 250}"), PEER, "http")
    assert not any(isinstance(getattr(proxies, slot), dict) for slot in type(proxies).__slots__)


def _fwd(*values: str) -> list[tuple[bytes, bytes]]:
    return [(b"forwarded", v.encode()) for v in values]


@pytest.mark.parametrize(
    ("values", "client", "scheme"),
    [
        (("for=192.0.2.60;proto=https",), ("192.0.2.60", 0), "https"),
        (('for="[2001:db8:cafe::17]:4711"',), ("2001:db8:cafe::17", 0), "http"),
        (('for="192.0.2.60:4711";by=10.0.0.1;host=example.com',), ("192.0.2.60", 0), "http"),
        # RFC 7239 6: a port makes the node a quoted-string; unquoted it does not parse.
        (("for=192.0.2.60:4711",), PEER, "http"),
        (("for=198.51.100.9, for=127.0.0.1",), ("198.51.100.9", 0), "http"),
        (("for=198.51.100.9", "for=127.0.0.1"), ("198.51.100.9", 0), "http"),
        # A client's junk on the left, an unbalanced quote included, does not hide it.
        (('for=junk"x, for=198.51.100.9;proto=https',), ("198.51.100.9", 0), "https"),
        (("for=_hidden, for=198.51.100.9",), ("198.51.100.9", 0), "http"),
        (("for=unknown",), PEER, "http"),
        (("garbage;;;",), PEER, "http"),
        (("for=192.0.2.60;proto=ftp",), ("192.0.2.60", 0), "http"),
    ],
)
def test_rfc7239_forwarded(values: tuple[str, ...], client: tuple[str, int], scheme: str) -> None:
    """RFC 7239 4-6: the same right-to-left walk over the elements' for= nodes."""
    proxies = TrustedProxies("127.0.0.1", rfc7239=True)
    assert proxies.resolve(_fwd(*values), PEER, "http") == (client, scheme)


def test_only_the_chosen_style_is_read() -> None:
    """With Forwarded chosen, a client's X-Forwarded-For is not read, and the other way round."""
    rfc = TrustedProxies("127.0.0.1", rfc7239=True)
    assert rfc.resolve(xff("203.0.113.7"), PEER, "http") == (PEER, "http")
    legacy = TrustedProxies("127.0.0.1")
    assert legacy.resolve(_fwd("for=203.0.113.7"), PEER, "http") == (PEER, "http")


@given(st.binary(max_size=80))
def test_any_forwarded_bytes_give_an_answer(value: bytes) -> None:
    client, scheme = TrustedProxies("*", rfc7239=True).resolve(
        [(b"forwarded", value)], PEER, "http"
    )
    assert scheme in ("http", "https") and client is not None


_HOPS = st.sampled_from(
    [
        "203.0.113.7",
        "10.1.2.3",
        "127.0.0.1",
        "::1",
        "junk",
        "",
        " 198.51.100.2 ",
        "1.2.3.4, 10.0.0.9",
    ]
)
_PROTOS = st.sampled_from(["https", "HTTP", "ftp", "", "http, https"])


@given(
    st.lists(_HOPS, max_size=3),
    st.lists(_PROTOS, max_size=3),
    st.sampled_from(["127.0.0.1", "10.0.0.0/8, 127.0.0.1", "192.0.2.1", "*"]),
    st.sampled_from([PEER, ("192.0.2.1", 1), None]),
)
def test_resolve_text_answers_as_resolve_on_the_fields(
    hops: list[str], protos: list[str], spec: str, peer: tuple[str, int] | None
) -> None:
    """A WSGI server reads the fields from the environ, each repeat joined with ", " (PEP
    3333): the walk over that text gives what the walk over the separate fields gives."""
    proxies = TrustedProxies(f"{spec}, unix")
    expected = proxies.resolve(xff(*hops, proto=tuple(protos)), peer, "http")
    text = proxies.resolve_text(", ".join(hops), ", ".join(protos), peer, "http")
    assert text == expected
    rfc = TrustedProxies(spec, rfc7239=True)
    assert rfc.resolve_text(", ".join(hops), "https", peer, "http") == (peer, "http")
