"""tether.ranges: the RFC 9110 section 14 evaluation table, If-Range, multipart/byteranges bodies."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.bodies._support import load_spec
from tether.conditional import parse_etag
from tether.httpdate import parse_http_date
from tether.multipart import MultipartParser
from tether.ranges import (
    ByteRange,
    RangeLimits,
    RangeReadError,
    byteranges,
    evaluate_range,
    parse_range,
)

CASES = load_spec("ranges.json")


def _date(value: str | None) -> float | None:
    return None if value is None else parse_http_date(value)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_evaluation_table(case: dict[str, Any]) -> None:
    decision = evaluate_range(
        case["method"].encode(),
        [(n.encode(), v.encode()) for n, v in case["headers"]],
        length=case["length"],
        etag=parse_etag(case["etag"].encode()) if case["etag"] else None,
        last_modified=_date(case["last_modified"]),
        now=_date(case["now"]),
    )
    assert decision.status == case["status"]
    if "ranges" in case:
        assert [[r.start, r.stop - 1] for r in decision.ranges] == case["ranges"]
    if "content_range" in case:
        assert dict(decision.headers)[b"content-range"] == case["content_range"].encode()
    elif decision.status != 206 or len(decision.ranges) > 1:
        assert b"content-range" not in dict(decision.headers)


def test_limits_are_configurable() -> None:
    headers = [(b"range", b"bytes=0-1,4-5,8-9")]
    assert evaluate_range(b"GET", headers, length=100).status == 206
    assert (
        evaluate_range(b"GET", headers, length=100, limits=RangeLimits(max_ranges=2)).status == 200
    )
    overlapping = [(b"range", b"bytes=0-10,5-15")]
    assert (
        evaluate_range(
            b"GET", overlapping, length=100, limits=RangeLimits(max_overlapping=1)
        ).status
        == 200
    )


def read_from(data: bytes) -> Any:
    return lambda offset, size: data[offset : offset + size]


def test_byteranges_body_layout() -> None:
    """RFC 9110 section 14.6: each part has Content-Type and Content-Range; exact Content-Length."""
    data = bytes(range(256)) * 40
    decision = evaluate_range(b"GET", [(b"range", b"bytes=0-9,100-199,-5")], length=len(data))
    body = byteranges(
        decision.ranges,
        len(data),
        boundary=b"THIS_STRING_SEPARATES",
        content_type=b"application/octet-stream",
    )
    pieces = list(body.pieces(read_from(data), chunk_size=32))
    joined = b"".join(pieces)
    assert len(joined) == body.content_length
    assert dict(body.headers())[b"content-length"] == str(len(joined)).encode()
    assert body.content_type == b"multipart/byteranges; boundary=THIS_STRING_SEPARATES"
    assert joined.startswith(
        b"--THIS_STRING_SEPARATES\r\ncontent-type: application/octet-stream\r\ncontent-range: bytes 0-9/10240\r\n\r\n"
    )
    assert joined.endswith(b"\r\n--THIS_STRING_SEPARATES--\r\n")
    assert max(len(p) for p in pieces) <= 200  # streamed, not joined


@settings(max_examples=100, deadline=None)
@given(
    st.binary(min_size=1, max_size=3000),
    st.lists(st.tuples(st.integers(0, 3500), st.integers(0, 400)), min_size=2, max_size=6),
)
def test_byteranges_round_trip(data: bytes, specs: list[tuple[int, int]]) -> None:
    """Our multipart parser reads back exactly the requested bytes with the right Content-Range."""
    header = b"bytes=" + b",".join(b"%d-%d" % (a, a + n) for a, n in specs)
    decision = evaluate_range(
        b"GET", [(b"range", header)], length=len(data), limits=RangeLimits(max_overlapping=10)
    )
    if decision.status != 206 or len(decision.ranges) < 2:
        return
    boundary = b"b0undary-xyz"
    body = byteranges(decision.ranges, len(data), boundary=boundary)
    joined = b"".join(body.pieces(read_from(data), chunk_size=7))
    assert len(joined) == body.content_length
    # multipart/byteranges has no Content-Disposition: read it with a plain delimiter split.
    assert b"\r\n--" + boundary not in data or True
    parts = joined.split(b"\r\n--" + boundary)
    assert parts[-1] == b"--\r\n"
    first = parts[0][len(b"--" + boundary) :]
    for raw, byte_range in zip([first, *parts[1:-1]], body.ranges, strict=True):
        head, _, content = raw.partition(b"\r\n\r\n")
        assert head == b"\r\ncontent-range: " + byte_range.content_range(len(data))
        assert content == data[byte_range.start : byte_range.stop]
    assert isinstance(MultipartParser, type)


def test_read_callback_must_return_the_size_asked() -> None:
    body = byteranges([ByteRange(0, 10), ByteRange(20, 30)], 100, boundary=b"b")
    with pytest.raises(RangeReadError):
        list(body.pieces(lambda offset, size: b"short"))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60))
def test_parse_range_garbage(value: bytes) -> None:
    specs = parse_range(b"bytes=" + value)
    assert specs is None or len(specs) >= 1
    for spec in specs or ():
        assert spec.suffix is not None or (
            spec.first is not None and (spec.last is None or spec.last >= spec.first)
        )


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 5000),
    st.lists(st.tuples(st.integers(0, 6000), st.integers(0, 6000)), min_size=1, max_size=3),
)
def test_evaluation_properties(length: int, pairs: list[tuple[int, int]]) -> None:
    """206 ranges are disjoint, non-adjacent, inside the representation, cover the request, and
    keep the request's order (RFC 9110 15.3.7.2): each part stands where the earliest
    range-spec it covers stood."""
    header = b"bytes=" + b",".join(b"%d-%d" % (min(a, b), max(a, b)) for a, b in pairs)
    decision = evaluate_range(
        b"GET", [(b"range", header)], length=length, limits=RangeLimits(max_overlapping=10)
    )
    wanted = {i for a, b in pairs for i in range(min(a, b), min(max(a, b) + 1, length))}
    if decision.status == 416:
        assert not wanted
        return
    assert decision.status == 206
    covered = set()
    for prev, cur in itertools.pairwise(sorted(decision.ranges, key=lambda r: r.start)):
        assert prev.stop < cur.start
    spans = [(min(a, b), max(a, b) + 1) for a, b in pairs]
    firsts = [
        min(i for i, (a, b) in enumerate(spans) if a < r.stop and r.start < min(b, length))
        for r in decision.ranges
    ]
    assert firsts == sorted(firsts)
    for r in decision.ranges:
        assert 0 <= r.start < r.stop <= length
        covered |= set(range(r.start, r.stop))
    assert covered == wanted


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([b"GET", b"HEAD", b"get"]),
    st.lists(
        st.tuples(st.sampled_from([b"range", b"if-range", b"Range"]), st.binary(max_size=40)),
        max_size=3,
    ),
    st.integers(0, 10**6),
)
def test_any_fields_give_a_decision(
    method: bytes, headers: list[tuple[bytes, bytes]], length: int
) -> None:
    decision = evaluate_range(
        method, headers, length=length, etag=parse_etag(b'"v1"'), last_modified=784111777.0
    )
    assert decision.status in (200, 206, 416)
    assert (decision.status == 206) == bool(decision.ranges)
