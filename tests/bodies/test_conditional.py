"""tether.conditional: the RFC 9110 section 13 evaluation table, ETag parsing and comparison."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.bodies._support import load_spec
from tether.conditional import (
    ETag,
    InvalidETag,
    Precondition,
    evaluate_preconditions,
    parse_etag,
    parse_etag_list,
)
from tether.httpdate import parse_http_date

CASES = load_spec("conditional.json")


def _date(value: str | None) -> float | None:
    if value is None:
        return None
    parsed = parse_http_date(value)
    assert parsed is not None
    return parsed


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_evaluation_table(case: dict[str, Any]) -> None:
    headers = [(n.encode(), v.encode()) for n, v in case["headers"]]
    etag = parse_etag(case["etag"].encode()) if case["etag"] else None
    result = evaluate_preconditions(
        case["method"].encode(),
        headers,
        etag=etag,
        last_modified=_date(case["last_modified"]),
        exists=case["exists"],
        now=_date(case["now"]),
    )
    assert result.status == case["expect"]


def test_comparison_table() -> None:
    """RFC 9110 section 8.8.3.2's example table."""
    rows = [
        ('W/"1"', 'W/"1"', False, True),
        ('W/"1"', 'W/"2"', False, False),
        ('W/"1"', '"1"', False, True),
        ('"1"', '"1"', True, True),
    ]
    for a, b, strong, weak in rows:
        left, right = parse_etag(a.encode()), parse_etag(b.encode())
        assert left is not None and right is not None
        assert left.strong_match(right) is strong
        assert left.weak_match(right) is weak


@pytest.mark.parametrize(
    "value", [b"xyzzy", b'"a"b', b'w/"a"', b'W/ "a"', b'"a', b'"a"junk', b'"\x7f"', b'"a b"']
)
def test_malformed_etags(value: bytes) -> None:
    """entity-tag = [ weak ] opaque-tag; weak is %s"W/" (case-sensitive); etagc excludes SP and DEL."""
    assert parse_etag(value) is None


def test_etag_lists() -> None:
    assert parse_etag_list(b"*") is True
    assert parse_etag_list(b' "a" , W/"b",,') == [ETag(b"a"), ETag(b"b", weak=True)]
    assert parse_etag_list(b'"a", *') is None
    assert parse_etag_list(b"") is None
    assert parse_etag_list(b'"a" "b"') is None


def test_etag_refuses_bad_opaque() -> None:
    with pytest.raises(InvalidETag):
        ETag(b'a"b')
    assert ETag(b"v1", weak=True).to_bytes() == b'W/"v1"'


opaque = st.binary(max_size=12).map(
    lambda b: bytes(c for c in b if c == 0x21 or (c >= 0x23 and c != 0x7F))
)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(opaque, st.booleans()), min_size=1, max_size=5), opaque, st.booleans())
def test_lists_round_trip_and_match(
    tags: list[tuple[bytes, bool]], current: bytes, weak: bool
) -> None:
    """A generated If-None-Match list matches exactly when a weak comparison says so."""
    value = b", ".join(ETag(o, weak=w).to_bytes() for o, w in tags)
    assert parse_etag_list(value) == [ETag(o, weak=w) for o, w in tags]
    etag = ETag(current, weak=weak)
    result = evaluate_preconditions(b"GET", [(b"if-none-match", value)], etag=etag)
    expected = (
        Precondition.NOT_MODIFIED if any(o == current for o, _ in tags) else Precondition.PROCEED
    )
    assert result is expected
    result = evaluate_preconditions(b"PUT", [(b"if-match", value)], etag=etag)
    matched = not weak and any(o == current and not w for o, w in tags)
    assert result is (Precondition.PROCEED if matched else Precondition.FAILED)


field_names = st.sampled_from(
    [b"if-match", b"if-none-match", b"if-modified-since", b"if-unmodified-since", b"If-Match"]
)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([b"GET", b"HEAD", b"PUT", b"post"]),
    st.lists(st.tuples(field_names, st.binary(max_size=40)), max_size=4),
    st.booleans(),
)
def test_any_fields_give_an_outcome(
    method: bytes, headers: list[tuple[bytes, bytes]], exists: bool
) -> None:
    """Arbitrary field values never raise; GET/HEAD never get 412 from If-None-Match alone."""
    result = evaluate_preconditions(
        method, headers, etag=ETag(b"v1"), last_modified=784111777.0, exists=exists
    )
    assert result in Precondition
