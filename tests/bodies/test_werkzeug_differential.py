"""Differential tests against Werkzeug (installed with Flask) where it defines the behaviour.

Werkzeug parses Range, ETag lists, HTTP dates and Accept-Encoding for Flask; on
valid generated input both must agree. (Werkzeug gives up on multi-range sets it
cannot order, so ranges are compared one spec at a time.)
"""

from __future__ import annotations

import calendar

from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug import http as wz

from tether.coding import parse_accept_encoding
from tether.conditional import ETag, parse_etag_list
from tether.httpdate import (
    format_asctime_date,
    format_http_date,
    format_rfc850_date,
    parse_http_date,
)
from tether.ranges import ByteRange, evaluate_range, parse_range

SETTINGS = settings(max_examples=150, deadline=None)

positions = st.integers(min_value=0, max_value=10**12)
specs = st.one_of(
    st.tuples(positions, positions).map(lambda p: f"{min(p)}-{max(p)}"),
    positions.map(lambda p: f"{p}-"),
    st.integers(min_value=1, max_value=10**12).map(lambda n: f"-{n}"),
)


@SETTINGS
@given(specs, st.integers(min_value=1, max_value=10**13))
def test_single_range_agrees(spec: str, length: int) -> None:
    header = f"bytes={spec}"
    ours = parse_range(header.encode())
    theirs = wz.parse_range_header(header)
    assert ours is not None and theirs is not None and len(ours) == 1 and len(theirs.ranges) == 1
    (start, stop), ours_spec = theirs.ranges[0], ours[0]
    if ours_spec.suffix is not None:
        assert (start, stop) == (-ours_spec.suffix, None)
    else:
        assert start == ours_spec.first
        assert stop == (None if ours_spec.last is None else ours_spec.last + 1)
    decision = evaluate_range(b"GET", [(b"range", header.encode())], length=length)
    if ours_spec.suffix is not None and ours_spec.suffix > length:
        # Werkzeug calls this unsatisfiable; RFC 9110 section 14.1.2: "If the selected
        # representation is shorter than the specified suffix-length, the entire
        # representation is used."
        assert decision.status == 206 and decision.ranges[0] == ByteRange(0, length)
        return
    window = theirs.range_for_length(length)
    if window is None:
        assert decision.status == 416
    else:
        assert decision.status == 206
        assert (decision.ranges[0].start, decision.ranges[0].stop) == window


# Werkzeug never matches the empty tag "" (valid: opaque-tag = DQUOTE *etagc DQUOTE).
opaque = st.text(
    alphabet="abcdefXYZ0123456789-._~!#$&'()*+/:;<=>?@[]^`{|}", min_size=1, max_size=10
)


@SETTINGS
@given(st.lists(st.tuples(opaque, st.booleans()), min_size=1, max_size=5))
def test_etag_lists_agree(tags: list[tuple[str, bool]]) -> None:
    value = ", ".join(('W/"%s"' if weak else '"%s"') % o for o, weak in tags)
    ours = parse_etag_list(value.encode())
    theirs = wz.parse_etags(value)
    assert isinstance(ours, list)
    for o, _ in tags:
        strong_here = any(tag.strong_match(ETag(o.encode())) for tag in ours)
        assert strong_here == theirs.contains(o)
        assert any(tag.weak_match(ETag(o.encode())) for tag in ours) == theirs.contains_weak(o)


@SETTINGS
@given(st.integers(min_value=0, max_value=calendar.timegm((2068, 12, 31, 23, 59, 59))))
def test_dates_agree(ts: int) -> None:
    for text in (format_http_date(ts), format_rfc850_date(ts), format_asctime_date(ts)):
        parsed = wz.parse_date(text.decode())
        assert parsed is not None
        assert parse_http_date(text) == parsed.timestamp() == ts


codings = st.sampled_from(["gzip", "br", "deflate", "zstd", "identity", "*", "compress"])
qvalues = st.one_of(st.none(), st.sampled_from(["1", "0", "0.5", "0.25", "0.125", "1.000", "0.0"]))


@SETTINGS
@given(st.lists(st.tuples(codings, qvalues), max_size=5, unique_by=lambda t: t[0]))
def test_accept_encoding_weights_agree(items: list[tuple[str, str | None]]) -> None:
    value = ", ".join(c if q is None else f"{c};q={q}" for c, q in items)
    ours = parse_accept_encoding(value.encode())
    theirs = wz.parse_accept_header(value)
    assert ours is not None
    for coding, _ in items:
        assert ours[coding] == theirs[coding] or (
            coding == "*" and ours["*"] == theirs.quality("*")
        )
