"""tether.multipart: spec vectors, any-split equivalence, round trips, limits, differential tests."""

from __future__ import annotations

import itertools
from typing import Any

import multipart as defnull
import pytest
import python_multipart
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.bodies._support import load_spec
from tether import multipart as mp
from tether._multipart_headers import _SIMPLE_NAME_MAX, _SIMPLE_STARTS_MAX
from tether.errors import LocalProtocolError, RemoteProtocolError
from tether.multipart import (
    End,
    MultipartLimits,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
)

CASES = load_spec("multipart.json")
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Part = dict[str, Any]


def collect(events: list[mp.MultipartEvent]) -> list[Part]:
    """Parts from an event list, checking the event grammar: (Start Data* End)* End."""
    parts: list[Part] = []
    current: Part | None = None
    ended = False
    for event in events:
        assert not ended, "event after End"
        if isinstance(event, PartStart):
            assert current is None
            current = {
                "name": event.name,
                "filename": event.filename,
                "content_type": event.content_type,
                "headers": event.headers,
                "data": b"",
            }
        elif isinstance(event, PartData):
            assert current is not None and event.data, "empty or stray PartData"
            current["data"] += event.data
        elif isinstance(event, PartEnd):
            assert current is not None
            parts.append(current)
            current = None
        else:
            assert isinstance(event, End) and current is None
            ended = True
    assert ended, "no End event"
    return parts


def parse(
    boundary: bytes, pieces: list[bytes], limits: MultipartLimits | None = None
) -> list[Part]:
    parser = MultipartParser(boundary, limits)
    events: list[mp.MultipartEvent] = []
    for piece in pieces:
        events += parser.feed(piece)
    events += parser.close()
    assert parser.complete
    return collect(events)


def split_at(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    return [body[a:b] for a, b in itertools.pairwise(points)]


def case_body(case: dict[str, Any]) -> tuple[bytes, bytes]:
    return case["boundary"].encode("latin-1"), case["body"].encode("latin-1")


def check_case(case: dict[str, Any], pieces: list[bytes]) -> None:
    boundary = case["boundary"].encode("latin-1")
    if "error" in case:
        with pytest.raises(getattr(mp, case["error"])) as info:
            parse(boundary, pieces)
        assert isinstance(info.value, RemoteProtocolError)
        assert info.value.status_hint == 400
        return
    got = parse(boundary, pieces)
    want = case["parts"]
    assert len(got) == len(want)
    for part, expected in zip(got, want, strict=True):
        assert part["name"] == expected["name"]
        assert part["filename"] == expected["filename"]
        assert part["content_type"] == expected["content_type"]
        assert part["data"] == expected["data"].encode("utf-8")


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_spec_vector_whole_and_bytewise(case: dict[str, Any]) -> None:
    """Each vector (its RFC section is in the JSON) fed whole, then one byte at a time."""
    _, body = case_body(case)
    check_case(case, [body])
    check_case(case, [body[i : i + 1] for i in range(len(body))])


@SETTINGS
@given(st.sampled_from(CASES), st.lists(st.integers(min_value=0), max_size=8))
def test_spec_vector_any_split(case: dict[str, Any], cuts: list[int]) -> None:
    _, body = case_body(case)
    check_case(case, split_at(body, cuts))


# ---- generated bodies --------------------------------------------------------------------------

BCHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?"
boundaries = st.builds(
    lambda body, last: body + last,
    st.text(alphabet=BCHARS + " ", max_size=40),
    st.sampled_from(BCHARS),
).map(lambda s: s.encode("ascii"))
names = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters='"\\%'),
    min_size=1,
    max_size=20,
)
tricky = st.sampled_from([b"\r", b"\n", b"\r\n", b"-", b"--", b"\r\n-", b"\r\n--", b" ", b"\x00"])
data_pieces = st.lists(st.one_of(st.binary(max_size=40), tricky), max_size=12).map(b"".join)
ctypes = st.sampled_from([None, "text/plain", "application/octet-stream", "image/png"])
parts_strategy = st.lists(
    st.tuples(names, st.one_of(st.none(), names), ctypes, data_pieces), max_size=6
)


def encode(boundary: bytes, parts: list[tuple[str, str | None, str | None, bytes]]) -> bytes:
    """A multipart/form-data body as browsers write it."""
    out = []
    for name, filename, ctype, data in parts:
        head = b'Content-Disposition: form-data; name="%s"' % name.encode("utf-8")
        if filename is not None:
            head += b'; filename="%s"' % filename.encode("utf-8")
        if ctype is not None:
            head += b"\r\nContent-Type: " + ctype.encode("ascii")
        out.append(b"--" + boundary + b"\r\n" + head + b"\r\n\r\n" + data + b"\r\n")
    return b"".join(out) + b"--" + boundary + b"--\r\n"


def valid_parts(boundary: bytes, parts: list[tuple[str, str | None, str | None, bytes]]) -> None:
    delimiter = b"\r\n--" + boundary
    for _, _, _, data in parts:
        # The sender must pick a boundary that occurs in no part (RFC 2046 section 5.1.1).
        assume(delimiter not in b"\r\n" + data + b"\r\n")
        assume(not (b"\r\n" + data).endswith(delimiter[: len(delimiter) - 1]))
        assume(delimiter not in (b"\r\n" + data + delimiter)[: -len(delimiter)] + b"\r\n")


@SETTINGS
@given(boundaries, parts_strategy, st.lists(st.integers(min_value=0), max_size=10))
def test_generated_bodies_round_trip_at_any_split(
    boundary: bytes, parts: list[tuple[str, str | None, str | None, bytes]], cuts: list[int]
) -> None:
    """Encode, then parse whole, byte by byte and split anywhere: the same parts every time."""
    valid_parts(boundary, parts)
    body = encode(boundary, parts)
    want = [(n, f, c, d) for n, f, c, d in parts]
    for pieces in ([body], split_at(body, cuts), [body[i : i + 1] for i in range(len(body))]):
        got = parse(boundary, pieces)
        assert [(p["name"], p["filename"], p["content_type"], p["data"]) for p in got] == want


def python_multipart_parts(boundary: bytes, body: bytes) -> list[tuple[bytes, bytes]]:
    """(Content-Disposition value, data) per part, as python-multipart reports them."""
    parts: list[tuple[bytes, bytes]] = []
    state: dict[str, Any] = {}

    def on_part_begin() -> None:
        state.update(data=b"", field=b"", value=b"", headers={})

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].lower()] = state["value"]
        state["field"] = state["value"] = b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        state["data"] += data[start:end]

    def on_part_end() -> None:
        parts.append((state["headers"][b"content-disposition"], state["data"]))

    callbacks = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }
    parser = python_multipart.MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    parser.write(body)
    parser.finalize()
    return parts


@SETTINGS
@given(boundaries, parts_strategy)
def test_differential_python_multipart(
    boundary: bytes, parts: list[tuple[str, str | None, str | None, bytes]]
) -> None:
    """Same Content-Disposition values and data as python-multipart on generated bodies."""
    valid_parts(boundary, parts)
    body = encode(boundary, parts)
    ours = [
        (dict(p["headers"])[b"content-disposition"], p["data"]) for p in parse(boundary, [body])
    ]
    assert ours == python_multipart_parts(boundary, body)


@SETTINGS
@given(boundaries.filter(lambda b: b[:1] != b" "), parts_strategy)
def test_differential_defnull_multipart(
    boundary: bytes, parts: list[tuple[str, str | None, str | None, bytes]]
) -> None:
    """Same names, filenames, content types and data as multipart (defnull) on generated bodies."""
    valid_parts(boundary, parts)
    body = encode(boundary, parts)
    theirs = []
    with defnull.PushMultipartParser(boundary) as parser:
        current: list[Any] = []
        for event in parser.parse(body):
            if isinstance(event, defnull.MultipartSegment):
                current = [event.name, event.filename, event.content_type, b""]
            elif event is None:
                theirs.append(tuple(current))
            else:
                current[3] += bytes(event)
    ours = [
        (p["name"], p["filename"], p["content_type"], p["data"]) for p in parse(boundary, [body])
    ]
    assert ours == theirs


@SETTINGS
@given(st.binary(max_size=300), st.lists(st.integers(min_value=0), max_size=6))
def test_garbage_gives_events_or_multipart_error(body: bytes, cuts: list[int]) -> None:
    """Any input gives events or a MultipartError, never another exception."""
    for candidate in (
        body,
        b"--b\r\n" + body,
        b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\n" + body,
    ):
        parser = MultipartParser(b"b")
        try:
            for piece in split_at(candidate, cuts):
                parser.feed(piece)
            parser.close()
        except mp.MultipartError:
            pass


# ---- limits ------------------------------------------------------------------------------------


def field(
    name: str, value: bytes, filename: str | None = None
) -> tuple[str, str | None, str | None, bytes]:
    return (name, filename, None, value)


@pytest.mark.parametrize(
    ("limits", "parts", "error", "limit"),
    [
        (MultipartLimits(max_parts=2), [field("a", b"1")] * 3, mp.TooManyParts, "max_parts"),
        (MultipartLimits(max_parts=2), [field("a", b"1", "f")] * 3, mp.TooManyParts, "max_parts"),
        (
            MultipartLimits(max_parts=1),
            [("a", None, "text/plain", b"1")] * 2,
            mp.TooManyParts,
            "max_parts",
        ),
        (
            MultipartLimits(max_field_size=3),
            [field("a", b"1234")],
            mp.FieldTooLarge,
            "max_field_size",
        ),
        (
            MultipartLimits(max_file_size=3),
            [field("a", b"1234", "f")],
            mp.FileTooLarge,
            "max_file_size",
        ),
        (
            MultipartLimits(max_total_size=50),
            [field("a", b"x" * 60)],
            mp.MultipartBodyTooLarge,
            "max_total_size",
        ),
        (
            MultipartLimits(max_header_size=20),
            [field("a" * 30, b"")],
            mp.PartHeadersTooLarge,
            "max_header_size",
        ),
    ],
)
def test_limits_are_typed_and_named(
    limits: MultipartLimits, parts: list[Any], error: type[mp.MultipartLimitExceeded], limit: str
) -> None:
    body = encode(b"B", parts)
    for pieces in ([body], [body[i : i + 1] for i in range(len(body))]):
        with pytest.raises(error) as info:
            parse(b"B", pieces, limits)
        assert info.value.status_hint == 413
        assert info.value.limit == limit
        assert f"MultipartLimits.{limit}" in str(info.value)


def test_limits_pass_at_exactly_the_limit() -> None:
    body = encode(b"B", [field("a", b"123"), field("b", b"456", "f")])
    limits = MultipartLimits(
        max_parts=2, max_field_size=3, max_file_size=3, max_total_size=len(body)
    )
    assert [p["data"] for p in parse(b"B", [body], limits)] == [b"123", b"456"]


def test_header_count_limit() -> None:
    head = 'Content-Disposition: form-data; name="a"\r\n' + "X-A: 1\r\n" * 20
    body = b"--B\r\n" + head.encode() + b"\r\nv\r\n--B--"
    with pytest.raises(mp.PartHeadersTooLarge) as info:
        parse(b"B", [body])
    assert info.value.limit == "max_header_count"


def test_field_data_is_streamed_not_accumulated() -> None:
    """A 1 MiB file fed in 4 KiB pieces comes out as pieces, and nothing big is held."""
    payload = bytes(range(256)) * 4096
    body = encode(b"B", [field("f", payload, "f.bin")])
    parser = MultipartParser(b"B")
    sizes = []
    for i in range(0, len(body), 4096):
        for event in parser.feed(body[i : i + 4096]):
            if isinstance(event, PartData):
                sizes.append(len(event.data))
        assert len(parser._buffer) < len(b"\r\n--B")
    parser.close()
    assert sum(sizes) == len(payload) and max(sizes) <= 4096 and len(sizes) >= 256


def test_usage_errors() -> None:
    parser = MultipartParser(b"B")
    parser.feed(b"--B--\r\n")
    assert parser.close() == []
    assert parser.close() == []
    with pytest.raises(mp.MultipartUsageError) as info:
        parser.feed(b"x")
    assert isinstance(info.value, LocalProtocolError)
    broken = MultipartParser(b"B")
    with pytest.raises(mp.MalformedMultipart):
        broken.feed(b"--BX\r\n")
    with pytest.raises(mp.MultipartUsageError):
        broken.feed(b"more")


def test_end_of_body_right_after_close_delimiter() -> None:
    parser = MultipartParser(b"B")
    events = parser.feed(b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--B--')
    assert not any(isinstance(e, End) for e in events)
    assert parser.close() == [End()]


def test_epilogue_is_ignored_and_counted() -> None:
    parser = MultipartParser(b"B", MultipartLimits(max_total_size=30))
    assert parser.feed(b"--B--\r\n") == [End()]
    assert parser.feed(b"epilogue --B\r\n") == []
    with pytest.raises(mp.MultipartBodyTooLarge):
        parser.feed(b"x" * 20)


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("multipart/form-data; boundary=AaB03x", b"AaB03x"),
        ('Multipart/Form-Data; charset=utf-8; boundary="a b:c"', b"a b:c"),
        (b"multipart/form-data;boundary=----WebKitFormBoundaryAbC", b"----WebKitFormBoundaryAbC"),
    ],
)
def test_parse_boundary(content_type: str | bytes, boundary: bytes) -> None:
    assert mp.parse_boundary(content_type) == boundary


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/mixed; boundary=x",
        "text/plain; boundary=x",
        "multipart/form-data; boundary=",
        'multipart/form-data; boundary="ends with space "',
        "multipart/form-data; boundary=" + "x" * 71,
        'multipart/form-data; boundary="bad\\"char"',
        "multipart/form-data; boundary=a; boundary=b",
        "multipart/form-data; boundary=caf\u00e9",
    ],
)
def test_parse_boundary_refuses(content_type: str) -> None:
    """RFC 2046 section 5.1.1: boundary := 0*69<bchars> bcharsnospace, 1 to 70 characters."""
    with pytest.raises(mp.InvalidBoundary):
        mp.parse_boundary(content_type)


def test_events_are_frozen_and_slotted() -> None:
    event = PartData(b"x")
    with pytest.raises(AttributeError):
        event.data = b"y"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")
    start = parse(b"B", [encode(b"B", [field("a", b"")])])[0]
    assert start["headers"] == ((b"content-disposition", b'form-data; name="a"'),)


def test_parser_for_request_headers() -> None:
    body = encode(b"xyz", [field("a", b"1")])
    parser = mp.parser_for(
        [(b"host", b"h"), (b"Content-Type", b"multipart/form-data; boundary=xyz")]
    )
    assert collect(parser.feed(body) + parser.close())[0]["data"] == b"1"
    with pytest.raises(mp.InvalidBoundary):
        mp.parser_for([(b"content-type", b"text/plain")])
    with pytest.raises(mp.InvalidBoundary):
        mp.parser_for([])


def test_name_cache_stays_bounded() -> None:
    """Many distinct or long field names cannot grow a parser's PartStart cache without bound."""
    names = [f"n{i}" for i in range(3000)] + ["x" * 5000]
    body = encode(b"B", [field(n, b"v") for n in names])
    parser = mp.MultipartParser(b"B", MultipartLimits(max_parts=5000))
    parsed = collect(parser.feed(body) + parser.close())
    assert [p["name"] for p in parsed] == names
    assert len(parser._starts) <= _SIMPLE_STARTS_MAX
    assert all(len(raw) <= _SIMPLE_NAME_MAX for raw in parser._starts)
