"""tether.httpdate: spec vectors, round trips, and agreement with the standard library."""

from __future__ import annotations

import email.utils
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.bodies._support import load_spec
from tether.httpdate import InvalidTimestamp, format_http_date, parse_http_date

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
@given(timestamps.filter(lambda t: t >= -2208988800))
def test_obsolete_forms_parse_to_the_same_instant(ts: int) -> None:
    import time

    t = time.gmtime(ts)
    asctime = time.strftime("%a %b %d %H:%M:%S %Y", t)
    asctime = (
        asctime[:8] + (" " + asctime[9] if asctime[8] == "0" else asctime[8:10]) + asctime[10:]
    )
    assert parse_http_date(asctime) == ts
    if 1970 <= t.tm_year <= 2069:
        rfc850 = time.strftime("%A, %d-%b-%y %H:%M:%S GMT", t)
        assert parse_http_date(rfc850) == ts


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40))
def test_garbage_is_none_or_a_timestamp(value: bytes) -> None:
    result = parse_http_date(value)
    assert result is None or isinstance(result, float)
