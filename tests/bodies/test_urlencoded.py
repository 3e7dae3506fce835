"""tether.urlencoded: spec vectors, any split, differential against urllib and python-multipart."""

from __future__ import annotations

import contextlib
import itertools
from typing import Any
from urllib.parse import parse_qsl, quote_plus, unquote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from python_multipart import QuerystringParser

from tests.bodies._support import load_spec
from tether import urlencoded as ue
from tether.urlencoded import UrlencodedLimits, UrlencodedParser, parse_urlencoded

CASES = load_spec("urlencoded.json")
SETTINGS = settings(max_examples=80, deadline=None)


def parse(pieces: list[bytes], limits: UrlencodedLimits | None = None) -> list[tuple[str, str]]:
    parser = UrlencodedParser(limits)
    events: list[ue.UrlencodedEvent] = []
    for piece in pieces:
        events += parser.feed(piece)
    events += parser.close()
    assert events[-1] == ue.End() and ue.End() not in events[:-1]
    return [(e.name, e.value) for e in events if isinstance(e, ue.Field)]


def split_at(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    return [body[a:b] for a, b in itertools.pairwise(points)]


def check(case: dict[str, Any], pieces: list[bytes]) -> None:
    if "error" in case:
        with pytest.raises(getattr(ue, case["error"])) as info:
            parse(pieces)
        assert info.value.status_hint == 400
    else:
        assert parse(pieces) == [tuple(f) for f in case["fields"]]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_spec_vectors(case: dict[str, Any]) -> None:
    body = case["body"].encode("latin-1")
    check(case, [body])
    check(case, [body[i : i + 1] for i in range(len(body))])


@SETTINGS
@given(st.sampled_from(CASES), st.lists(st.integers(min_value=0), max_size=6))
def test_spec_vectors_any_split(case: dict[str, Any], cuts: list[int]) -> None:
    check(case, split_at(case["body"].encode("latin-1"), cuts))


pairs = st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12)), max_size=10)


def encode(fields: list[tuple[str, str]]) -> bytes:
    return "&".join(f"{quote_plus(n)}={quote_plus(v)}" for n, v in fields).encode("ascii")


@SETTINGS
@given(pairs, st.lists(st.integers(min_value=0), max_size=6))
def test_round_trip_and_differential(fields: list[tuple[str, str]], cuts: list[int]) -> None:
    """Same fields as urllib's parse_qsl and python-multipart's QuerystringParser."""
    body = encode(fields)
    ours = parse(split_at(body, cuts))
    assert ours == [(n, v) for n, v in fields]
    assert ours == parse_qsl(body.decode("ascii"), keep_blank_values=True)
    theirs: list[tuple[bytes, bytes]] = []
    current: dict[str, bytes] = {}

    def on_field_name(data: bytes, start: int, end: int) -> None:
        current["name"] = current.get("name", b"") + data[start:end]

    def on_field_data(data: bytes, start: int, end: int) -> None:
        current["value"] = current.get("value", b"") + data[start:end]

    def on_field_end() -> None:
        theirs.append((current.pop("name", b""), current.pop("value", b"")))

    qs = QuerystringParser(
        {
            "on_field_name": on_field_name,
            "on_field_data": on_field_data,
            "on_field_end": on_field_end,
        }
    )  # type: ignore[arg-type]
    qs.write(body)
    qs.finalize()
    decoded = [
        (unquote_plus(n.decode("ascii")), unquote_plus(v.decode("ascii"))) for n, v in theirs
    ]
    # python-multipart reports an empty pair ("=") as nothing: compare the rest.
    assert [f for f in ours if f != ("", "")] == [f for f in decoded if f != ("", "")]


@SETTINGS
@given(st.binary(max_size=200), st.lists(st.integers(min_value=0), max_size=4))
def test_garbage_gives_fields_or_error(body: bytes, cuts: list[int]) -> None:
    with contextlib.suppress(ue.UrlencodedError):
        parse(split_at(body, cuts))


@pytest.mark.parametrize(
    ("limits", "body", "error", "limit"),
    [
        (UrlencodedLimits(max_fields=2), b"a=1&b=2&c=3", ue.TooManyFields, "max_fields"),
        (
            UrlencodedLimits(max_field_size=5),
            b"a=12345&b=2",
            ue.UrlencodedFieldTooLarge,
            "max_field_size",
        ),
        (
            UrlencodedLimits(max_field_size=5),
            b"b=2&a=12345",
            ue.UrlencodedFieldTooLarge,
            "max_field_size",
        ),
        (
            UrlencodedLimits(max_total_size=10),
            b"a=1&b=2&c=345",
            ue.UrlencodedBodyTooLarge,
            "max_total_size",
        ),
    ],
)
def test_limits(
    limits: UrlencodedLimits, body: bytes, error: type[ue.UrlencodedLimitExceeded], limit: str
) -> None:
    for pieces in ([body], [body[i : i + 1] for i in range(len(body))]):
        with pytest.raises(error) as info:
            parse(pieces, limits)
        assert info.value.status_hint == 413 and info.value.limit == limit


def test_limits_pass_at_exactly_the_limit() -> None:
    limits = UrlencodedLimits(max_fields=2, max_field_size=5, max_total_size=11)
    assert parse_urlencoded(b"a=123&b=456", limits) == [("a", "123"), ("b", "456")]


def test_held_field_is_bounded_while_streaming() -> None:
    parser = UrlencodedParser(UrlencodedLimits(max_field_size=100))
    parser.feed(b"a=" + b"x" * 98)
    with pytest.raises(ue.UrlencodedFieldTooLarge):
        parser.feed(b"y")
    with pytest.raises(ue.UrlencodedUsageError):
        parser.feed(b"z")
