"""tether.httpdate: spec vectors, round trips, and agreement with the standard library."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.bodies._support import load_spec
from tether.httpdate import (
    InvalidTimestamp,
    format_asctime_date,
    format_http_date,
    format_rfc850_date,
    parse_http_date,
)

CASES = load_spec("httpdate.json")


@pytest.mark.parametrize("case", CASES, ids=[c["value"] or "empty" for c in CASES])
def test_spec_vectors(case: dict[str, Any]) -> None:
    assert parse_http_date(case["value"], now=case["now"]) == case["expect"]
    assert parse_http_date(case["value"].encode("latin-1"), now=case["now"]) == case["expect"]


def test_format_example() -> None:
    """RFC 9110 section 5.6.7's example, and the fraction rounding down."""
    assert format_http_date(784111777) == b"Sun, 06 Nov 1994 08:49:37 GMT"
    assert format_http_date(784111777.999) == b"Sun, 06 Nov 1994 08:49:37 GMT"
    assert format_http_date(0) == b"Thu, 01 Jan 1970 00:00:00 GMT"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 1e13, -1e12])
def test_format_refuses_unrepresentable(bad: float) -> None:
    with pytest.raises(InvalidTimestamp):
        format_http_date(bad)


timestamps = st.integers(min_value=-62135596800, max_value=253402300799)


@settings(max_examples=200, deadline=None)
@given(timestamps)
def test_round_trip_and_stdlib_agreement(ts: int) -> None:
    """Every IMF-fixdate we write parses back; email.utils writes and reads the same text."""
    text = format_http_date(ts)
    assert parse_http_date(text) == ts
    if ts >= 0:
        assert text.decode() == email.utils.formatdate(ts, usegmt=True)


@settings(max_examples=200, deadline=None)
@given(timestamps)
def test_obsolete_forms_parse_to_the_same_instant(ts: int) -> None:
    """All three forms of one instant parse to it (RFC 850 within the two-digit window)."""
    assert parse_http_date(format_asctime_date(ts)) == ts
    year = time.gmtime(ts).tm_year
    if 1970 <= year <= 2069:
        assert parse_http_date(format_rfc850_date(ts)) == ts
    # With now, the 50-year rule picks the century nearest before now + 50 years.
    assert parse_http_date(format_rfc850_date(ts), now=float(ts)) == ts


def test_obsolete_examples() -> None:
    """RFC 9110 section 5.6.7's examples of the obsolete forms."""
    assert format_rfc850_date(784111777) == b"Sunday, 06-Nov-94 08:49:37 GMT"
    assert format_asctime_date(784111777) == b"Sun Nov  6 08:49:37 1994"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40))
def test_garbage_is_none_or_a_timestamp(value: bytes) -> None:
    result = parse_http_date(value)
    assert result is None or isinstance(result, float)
