"""tether.sse: the spec/sse vectors (encoder bytes, and parsing fed whole, byte by byte and split
anywhere), round trips of any text, and the errors the encoder raises."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether import sse
from tether.errors import LocalProtocolError

SPEC = json.loads(
    (pathlib.Path(__file__).parents[2] / "spec" / "sse" / "events.json").read_text("utf-8")
)
ENCODE = {case["id"]: case for case in SPEC["encode"]}
PARSE = {case["id"]: case for case in SPEC["parse"]}


def _parse(pieces: list[bytes]) -> tuple[list[list[str]], int | None]:
    parser = sse.EventStreamParser()
    events = [e for piece in pieces for e in parser.feed(piece)]
    return [[e.type, e.data, e.last_event_id] for e in events], parser.retry


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]


@pytest.mark.parametrize("case", ENCODE.values(), ids=list(ENCODE))
def test_encode_vectors(case: dict[str, Any]) -> None:
    if "error" in case:
        with pytest.raises(LocalProtocolError):
            sse.encode(**case["args"])
        return
    assert sse.encode(**case["args"]) == case["bytes"].encode("utf-8")


@pytest.mark.parametrize("case", PARSE.values(), ids=list(PARSE))
def test_parse_vectors_whole_and_bytewise(case: dict[str, Any]) -> None:
    stream = case["stream"].encode("utf-8")
    expected = (case["events"], case.get("retry"))
    assert _parse([stream]) == expected
    assert _parse([stream[i : i + 1] for i in range(len(stream))]) == expected


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(sorted(PARSE)), st.lists(st.integers(0, 10_000), max_size=6))
def test_parse_vectors_any_split(case_id: str, cuts: list[int]) -> None:
    case = PARSE[case_id]
    stream = case["stream"].encode("utf-8")
    assert _parse(_split(stream, cuts)) == (case["events"], case.get("retry"))


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            _text,
            st.none() | _text.filter(lambda t: "\r" not in t and "\n" not in t),
            st.none() | _text.filter(lambda t: not set(t) & {"\r", "\n", "\0"}),
        ),
        min_size=1,
        max_size=5,
    ),
    st.lists(st.integers(0, 10_000), max_size=6),
)
def test_round_trip(events: list[tuple[str, str | None, str | None]], cuts: list[int]) -> None:
    """What the encoder writes, a browser reads back: data (line ends as LF), type and id."""
    stream = b"".join(sse.encode(d, event=e, id=i) for d, e, i in events)
    got, _ = _parse(_split(stream, cuts))
    last_id = ""
    expected = []
    for data, event, id_ in events:
        last_id = last_id if id_ is None else id_
        normalised = data.replace("\r\n", "\n").replace("\r", "\n")
        expected.append([event or "message", normalised, last_id])
    assert got == expected


def test_comment_is_a_keep_alive_that_dispatches_nothing() -> None:
    assert sse.comment() == b":\n\n"
    assert sse.comment("ping") == b":ping\n\n"
    assert _parse([sse.comment("a\nb"), sse.encode("x")]) == ([["message", "x", ""]], None)


def test_headers_say_event_stream_and_no_buffering() -> None:
    fields = dict(sse.HEADERS)
    assert fields[b"content-type"].startswith(b"text/event-stream")
    assert fields[b"x-accel-buffering"] == b"no"
