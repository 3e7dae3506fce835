"""tether.sse.EventStreamParser's memory bound: a line, and the data lines of one event, are
held up to ``max_event_size`` bytes; past it the parser raises EventTooLarge (413), fed whole,
byte by byte or split anywhere, and never buffers much more than the bound."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether import sse
from tether.errors import LocalProtocolError, RemoteProtocolError

LIMIT = 64


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]


def _feed(pieces: list[bytes], limit: int = LIMIT) -> tuple[list[sse.Event], bool]:
    """The events the pieces make, and whether the parser refused the stream."""
    parser = sse.EventStreamParser(max_event_size=limit)
    events: list[sse.Event] = []
    for piece in pieces:
        try:
            events += parser.feed(piece)
        except sse.EventTooLarge as exc:
            assert exc.status_hint == 413 and isinstance(exc, RemoteProtocolError)
            assert "max_event_size" in str(exc)
            return events, True
    return events, False


def _ways(stream: bytes, cuts: list[int]) -> list[list[bytes]]:
    return [[stream], [stream[i : i + 1] for i in range(len(stream))], _split(stream, cuts)]


class TestEventTooLarge:
    def test_a_line_that_never_ends_is_refused_and_not_buffered(self) -> None:
        parser = sse.EventStreamParser()
        assert sse.MAX_EVENT_SIZE == 1024 * 1024
        piece = b"data: " + b"x" * 4090
        fed = 0
        with pytest.raises(sse.EventTooLarge):
            while fed < 4 * sse.MAX_EVENT_SIZE:
                parser.feed(piece)
                fed += len(piece)
                piece = b"x" * 4096
        # Refused within one piece of the bound: the buffer never held much more.
        assert sse.MAX_EVENT_SIZE < fed + 4096 <= sse.MAX_EVENT_SIZE + 2 * 4096
        with pytest.raises(LocalProtocolError):
            parser.feed(b"\n\n")

    def test_data_lines_that_never_dispatch_are_refused(self) -> None:
        # Short lines, each under the bound, that never reach the empty line.
        events, refused = _feed([b"data: 0123456789\n" * 10])
        assert refused and events == []

    def test_a_line_of_exactly_the_bound_is_read(self) -> None:
        line = b"data:" + b"y" * (LIMIT - 5)
        for pieces in _ways(line + b"\r\n\r\n", [7, 30]):
            events, refused = _feed(pieces)
            assert not refused
            assert [e.data for e in events] == ["y" * (LIMIT - 5)]

    def test_a_line_one_past_the_bound_is_refused(self) -> None:
        for pieces in _ways(b"data:" + b"y" * (LIMIT - 4) + b"\n\n", [3, 50]):
            assert _feed(pieces)[1]

    def test_comments_and_fields_do_not_add_up(self) -> None:
        # Only data lines accumulate; a long keep-alive of comment lines is fine.
        stream = b": keep-alive comment\n" * 100 + b"event: e\n" * 100 + b"data: d\n\n"
        for pieces in _ways(stream, [11, 900]):
            events, refused = _feed(pieces)
            assert not refused and [(e.type, e.data) for e in events] == [("e", "d")]

    def test_dispatch_resets_the_data_count(self) -> None:
        stream = b"data: 0123456789012345678901234567890123456789\n\n" * 50
        events, refused = _feed([stream])
        assert not refused and len(events) == 50

    def test_the_bound_must_be_positive(self) -> None:
        with pytest.raises(ValueError):
            sse.EventStreamParser(max_event_size=0)

    def test_iter_events_takes_the_bound(self) -> None:
        with pytest.raises(sse.EventTooLarge):
            list(sse.iter_events(iter([b"data: " + b"z" * 100]), max_event_size=LIMIT))


_line = st.one_of(
    st.binary(max_size=2 * LIMIT).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")),
    st.builds(lambda b: b"data: " + b, st.binary(max_size=40)).map(
        lambda b: b.replace(b"\n", b"").replace(b"\r", b"")
    ),
    st.just(b""),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_line, max_size=12),
    st.sampled_from([b"\n", b"\r", b"\r\n"]),
    st.lists(st.integers(0, 10_000), max_size=6),
)
def test_any_split_refuses_alike(lines: list[bytes], end: bytes, cuts: list[int]) -> None:
    """Fed whole, byte by byte or split anywhere: the same verdict, and the events read
    before a refusal are a prefix of what an unbounded parser reads."""
    stream = end.join(lines) + end
    unbounded, _ = _feed([stream], limit=1 << 30)
    too_long = any(len(line) > LIMIT for line in lines)
    verdicts = set()
    for pieces in _ways(stream, cuts):
        events, refused = _feed(pieces)
        verdicts.add(refused)
        assert events == unbounded[: len(events)]
        if not refused:
            assert events == unbounded
        if too_long:
            assert refused
    assert len(verdicts) == 1
