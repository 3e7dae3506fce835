"""``tether.strategies_ws``: frame streams against ``tether.websocket.Connection`` and wsproto.

Valid streams must give exactly their events, fed whole, byte by byte and split at
Hypothesis-chosen points; invalid ones the events before the bad frame, then a failure
with the expected close code (also in the close frame queued). wsproto must agree, except
where listed below with the RFC sentence.
"""

from __future__ import annotations

import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection as WsprotoConnection
from wsproto.connection import ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, TextMessage
from wsproto.events import Ping as WsprotoPing
from wsproto.events import Pong as WsprotoPong

import tether.strategies_ws
from tests.core._drive import split
from tether import websocket as ws
from tether.strategies_ws import Frame, FrameStream, ws_frame_streams, ws_frames
from tether.strategies_ws import ws_invalid_frame_streams as invalid_streams


def receive(
    stream: FrameStream, pieces: list[bytes], masked: bool
) -> tuple[list[object], int | None]:
    """Events the connection reports for ``pieces``, and the close code it failed with."""
    if masked:
        conn = ws.Connection(ws.Role.SERVER)
    else:
        conn = ws.Connection(ws.Role.CLIENT, mask_source=lambda n: b"\0" * n)
    events: list[object] = []
    for piece in pieces:
        if not piece:  # b"" would mean EOF
            continue
        conn.receive_data(piece)
        try:
            events.extend(conn.events())
        except ws.ProtocolError as exc:
            assert conn.close_code == exc.close_code
            out = conn.bytes_to_send()
            # The close frame carrying the code is the last thing queued.
            assert exc.close_code.to_bytes(2, "big") in out[-130:]
            return events, exc.close_code
    return events, None


def check(stream: FrameStream, data: st.DataObject, masked: bool) -> None:
    wire = stream.to_bytes()
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=8))
    ways = [[wire], split(wire, cuts)]
    if len(wire) < 4000:
        ways.append([wire[i : i + 1] for i in range(len(wire))])
    for pieces in ways:
        events, code = receive(stream, pieces, masked)
        assert events == list(stream.events), stream
        assert code == stream.close_code, stream


@given(st.booleans(), st.data())
def test_valid_streams(masked: bool, data: st.DataObject) -> None:
    check(data.draw(ws_frame_streams(masked=masked)), data, masked)


@settings(max_examples=10, deadline=None)
@given(st.data())
def test_valid_streams_with_64_bit_lengths(data: st.DataObject) -> None:
    stream = data.draw(ws_frame_streams(max_size=70000, max_messages=2))
    check(stream, data, True)


@given(st.booleans(), st.data())
def test_invalid_streams(masked: bool, data: st.DataObject) -> None:
    check(data.draw(invalid_streams(masked=masked)), data, masked)


@given(ws_frames(masked=True))
def test_one_frame(frame: Frame) -> None:
    conn = ws.Connection(ws.Role.SERVER)
    conn.receive_data(frame.to_bytes())
    (event,) = conn.events()
    assert (
        type(event).__name__.lower()
        == {1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}[frame.opcode]
    )


def test_every_rule_is_drawn() -> None:
    seen: set[tuple[str, int | None]] = set()

    @settings(max_examples=400, database=None)
    @given(invalid_streams())
    def collect(stream: FrameStream) -> None:
        seen.add((stream.rule, stream.close_code))

    collect()
    assert {code for _, code in seen} == {1002, 1007}
    assert {rule for rule, _ in seen} >= {
        "RFC 6455 5.1", "RFC 6455 5.2", "RFC 6455 5.4", "RFC 6455 5.5", "RFC 6455 5.5.1",
        "RFC 6455 7.4", "RFC 6455 8.1",
    }  # fmt: skip


# ---- against wsproto ------------------------------------------------------------------------


def wsproto_receive(wire: bytes, masked: bool) -> tuple[list[object], int | None]:
    """wsproto's events as tether events (messages joined), and the code it fails with."""
    kind = ConnectionType.SERVER if masked else ConnectionType.CLIENT
    conn = WsprotoConnection(kind)
    conn.receive_data(wire)
    events: list[object] = []
    parts: list[object] = []
    for event in conn.events():
        if isinstance(event, (TextMessage, BytesMessage)):
            parts.append(event.data)
            if event.message_finished:
                if isinstance(event, TextMessage):
                    events.append(ws.Text("".join(parts)))  # type: ignore[arg-type]
                else:
                    events.append(ws.Binary(b"".join(parts)))  # type: ignore[arg-type]
                parts = []
        elif isinstance(event, WsprotoPing):
            events.append(ws.Ping(bytes(event.payload)))
        elif isinstance(event, WsprotoPong):
            events.append(ws.Pong(bytes(event.payload)))
        elif isinstance(event, CloseConnection):
            # wsproto reports a failure as a close with the code (its weak spot): only a
            # peer's close frame moves it out of OPEN.
            if conn.state is ConnectionState.OPEN:
                return events, int(event.code)
            events.append(ws.Close(int(event.code), event.reason or ""))
    return events, None


# Close codes we take and wsproto refuses: 1014 (Bad Gateway) is in the IANA registry that
# RFC 6455 11.7 set up: 'Status Code ... 1014 | Bad Gateway' (RFC 6455 7.4.2: 1000-2999 are
# "reserved for definition by this protocol, its future revisions, and extensions").
WSPROTO_REFUSES = {1014}


@settings(max_examples=200)
@given(st.booleans(), st.data())
def test_valid_streams_against_wsproto(masked: bool, data: st.DataObject) -> None:
    stream = data.draw(ws_frame_streams(masked=masked))
    theirs, code = wsproto_receive(stream.to_bytes(), masked)
    last = stream.events[-1] if stream.events else None
    if isinstance(last, ws.Close) and last.code in WSPROTO_REFUSES:
        assert code == 1002
        assert theirs == list(stream.events[:-1])
        return
    assert code is None
    assert theirs == list(stream.events)


@settings(max_examples=300)
@given(st.booleans(), st.data())
def test_invalid_streams_against_wsproto(masked: bool, data: st.DataObject) -> None:
    stream = data.draw(invalid_streams(masked=masked))
    theirs, code = wsproto_receive(stream.to_bytes(), masked)
    assert code == stream.close_code, (stream, theirs, code)
    assert theirs == list(stream.events)


def test_the_wsproto_table_is_honest() -> None:
    for code in WSPROTO_REFUSES:
        frame = Frame(0x8, code.to_bytes(2, "big") + b"bye", mask=b"abcd")
        assert wsproto_receive(frame.to_bytes(), True) == ([], 1002)
        assert receive(FrameStream((frame,), ()), [frame.to_bytes()], True) == (
            [ws.Close(code, "bye")],
            None,
        )


def test_the_module_docstring_example_runs() -> None:
    doc = tether.strategies_ws.__doc__ or ""
    code = textwrap.dedent(doc.split("Without permessage-deflate::\n", 1)[1])
    assert "test_invalid_streams()" in code
    exec(code, {})
