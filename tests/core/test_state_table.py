"""The transition tables in ``http1/_state.py`` are the state machine.

Every write of a ServerConnection's ``_their_state`` or ``_our_state`` is a
look-up in ``THEIR_TRANSITIONS`` or ``OUR_TRANSITIONS``: checked in the source
(every assignment reads a table) and in behaviour (every change observed over
the spec vectors and Hypothesis streams, answered in the ways a server
answers, is a pair the table lists).
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import SPEC
from tether.conformance import load_vectors
from tether.errors import ProtocolError
from tether.http1 import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
    ServerConnection,
    State,
    _common,
    _connection,
    _respond,
)
from tether.http1._state import OUR_TRANSITIONS, THEIR_TRANSITIONS, _Move, column
from tether.limits import Limits
from tether.strategies import GeneratedRequest, request_streams

VECTORS = load_vectors(SPEC / "http1")
LEGAL = {
    "their": {(old, new) for (old, _), new in THEIR_TRANSITIONS.items()},
    "our": {(old, new) for (old, _), new in OUR_TRANSITIONS.items()},
}

# The slot descriptors of the two states (on a base class), which the subclass below wraps.
_SLOTS = {
    side: next(
        vars(cls)[f"_{side}_state"]
        for cls in ServerConnection.__mro__
        if f"_{side}_state" in vars(cls)
    )
    for side in ("their", "our")
}


class Recording(ServerConnection):
    """A ServerConnection that notes every write of its two states (nothing patched)."""

    def __init__(self, limits: Limits | None = None, *, now: float = 0.0) -> None:
        self.writes: list[tuple[str, State | None, State]] = []
        super().__init__(limits, now=now)

    def _write(self, side: str, value: State) -> None:
        slot = _SLOTS[side]
        try:
            old = slot.__get__(self, ServerConnection)
        except AttributeError:
            old = None  # the first write, in __init__
        self.writes.append((side, old, value))
        slot.__set__(self, value)

    @property
    def _their_state(self) -> State:
        return _SLOTS["their"].__get__(self, ServerConnection)  # type: ignore[no-any-return]

    @_their_state.setter
    def _their_state(self, value: State) -> None:
        self._write("their", value)

    @property
    def _our_state(self) -> State:
        return _SLOTS["our"].__get__(self, ServerConnection)  # type: ignore[no-any-return]

    @_our_state.setter
    def _our_state(self, value: State) -> None:
        self._write("our", value)


def illegal(conn: Recording) -> list[tuple[str, State | None, State]]:
    return [
        (side, old, new)
        for side, old, new in conn.writes
        if old is not None and (old, new) not in LEGAL[side]
    ]


def drive(pieces: Iterable[bytes], style: int, limits: Limits | None = None) -> Recording:
    """Serve ``pieces`` as a server would; ``style`` picks how requests are answered.

    0: read each body, then answer. 1: answer at the Request, leave the body
    (the core drains or closes). 2: answer 100-continue, then like 0. 3: a 101
    for an upgrade request, else like 1.
    """
    now = 0.0
    conn = Recording(limits, now=now)
    answered = False
    try:
        for piece in [*pieces, b""]:
            now += 1.0
            conn.receive_data(piece, now=now)
            while True:
                event = conn.next_event(now=now)
                if event is NEED_DATA or isinstance(event, ConnectionClosed):
                    break
                if isinstance(event, Request):
                    answered = False
                    upgrade = any(name == b"upgrade" for name, _ in event.headers)
                    if style == 3 and upgrade:
                        continue
                    if style == 2 and conn.expects_continue:
                        conn.send(InformationalResponse(100))
                    if style in (1, 3):
                        conn.send(Response(200, [(b"content-length", b"2")]))
                        conn.send(Data(b"ok"))
                        conn.send(EndOfMessage())
                        answered = True
                elif isinstance(event, EndOfMessage) and style == 3 and not answered:
                    try:
                        conn.send(InformationalResponse(101, [(b"upgrade", b"x")]))
                        return conn
                    except ProtocolError:
                        pass
                if (event is PAUSED or isinstance(event, EndOfMessage)) and not answered:
                    conn.send(Response(204))
                    conn.send(EndOfMessage())
                    answered = True
                if event is PAUSED or (isinstance(event, EndOfMessage) and answered):
                    if not conn.start_next_cycle(now=now):
                        return conn
                    answered = False
                if event is PAUSED:
                    break
    except ProtocolError as error:
        conn.error_response(error)
        return conn
    conn.handle_timeout(now + 10_000.0)
    return conn


@pytest.mark.parametrize("style", [0, 1, 2, 3])
def test_every_state_change_over_the_spec_vectors_is_in_the_table(style: int) -> None:
    for vector in VECTORS:
        splits = [[vector.input]]
        if style == 1:  # byte by byte once: it reaches the partial-input paths
            splits.append([vector.input[i : i + 1] for i in range(len(vector.input))])
        for pieces in splits:
            conn = drive(pieces, style, vector.make_limits())
            assert illegal(conn) == [], vector.id


@settings(max_examples=40)
@given(request_streams(), st.lists(st.integers(0, 5000), max_size=6), st.integers(0, 3))
def test_every_state_change_over_generated_streams_is_in_the_table(
    stream: list[GeneratedRequest], cuts: list[int], style: int
) -> None:
    wire = b"".join(request.to_bytes() for request in stream)
    points = sorted({min(c, len(wire)) for c in cuts})
    pieces = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)])]
    conn = drive(pieces, style)
    assert illegal(conn) == []


def test_the_drain_and_the_failures_are_named_moves() -> None:
    """The paths that once set states directly: drain, close after a response, timeouts."""
    body = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234"
    conn = drive([body, b"56789GET / HTTP/1.1\r\nHost: a\r\n\r\n"], style=1)
    sides = {(side, old, new) for side, old, new in conn.writes}
    assert ("our", State.DONE, State.IDLE) in sides  # DRAIN: the peer is still sending
    assert ("their", State.SEND_BODY, State.DONE) in sides
    assert illegal(conn) == []
    stalled = drive([body], style=0)  # the body stalls: handle_timeout fails both sides
    assert ("their", State.SEND_BODY, State.ERROR) in set(stalled.writes)
    assert illegal(stalled) == []


def test_the_source_writes_states_only_through_the_tables() -> None:
    # The server connection is written in three modules: shared state, responses, requests.
    tree = ast.Module(
        body=[
            statement
            for module in (_common, _respond, _connection)
            for statement in ast.parse(inspect.getsource(module)).body
        ],
        type_ignores=[],
    )
    writes: list[tuple[str, ast.expr]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                    targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
                    for target in targets:
                        if isinstance(target, ast.Attribute) and target.attr in (
                            "_our_state",
                            "_their_state",
                        ):
                            assert sub.value is not None
                            writes.append((node.name, sub.value))
    assert len(writes) >= 15
    for function, value in writes:
        if function == "__init__":
            assert ast.unparse(value) == "_IDLE"
            continue
        assert isinstance(value, ast.Subscript), (function, ast.unparse(value))
        table = ast.unparse(value.value)
        assert table in ("_OURS", "_THEIRS") or table.startswith(("_OURS_ON_", "_THEIRS_ON_")), (
            function,
            ast.unparse(value),
        )


def test_the_columns_are_read_from_the_tables() -> None:
    columns = [name for name in vars(_connection) if name.startswith(("_OURS_ON_", "_THEIRS_ON_"))]
    assert len(columns) >= 5
    for name in columns:
        side, _, move = name[1:].partition("_ON_")
        table = OUR_TRANSITIONS if side == "OURS" else THEIR_TRANSITIONS
        assert getattr(_connection, name) == column(table, _Move[move]), name
