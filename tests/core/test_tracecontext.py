"""tether.tracecontext: the spec/tracecontext vectors, and trace_context over header lists."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.tracecontext import (
    TraceParent,
    parse_traceparent,
    parse_tracestate,
    trace_context,
)

SPEC = json.loads(
    (pathlib.Path(__file__).parents[2] / "spec/tracecontext/traceparent.json").read_text("utf-8")
)
PARENTS = {c["id"]: c for c in SPEC["traceparent"]}
STATES = {c["id"]: c for c in SPEC["tracestate"]}
VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize("case", PARENTS.values(), ids=list(PARENTS))
def test_traceparent_vectors(case: dict[str, Any]) -> None:
    for value in (case["value"], case["value"].encode("utf-8")):
        parsed = parse_traceparent(value)
        if case.get("valid", True) is False:
            assert parsed is None
            continue
        assert parsed is not None
        assert (parsed.trace_id, parsed.parent_id, parsed.flags, parsed.sampled) == (
            case["trace_id"],
            case["parent_id"],
            case["flags"],
            case["sampled"],
        )


@pytest.mark.parametrize("case", STATES.values(), ids=list(STATES))
def test_tracestate_vectors(case: dict[str, Any]) -> None:
    got = parse_tracestate(case["lines"])
    expected = None if case["members"] is None else tuple(map(tuple, case["members"]))
    assert got == expected


@given(st.binary(max_size=80))
def test_any_bytes_give_a_context_or_none(value: bytes) -> None:
    parsed = parse_traceparent(value)
    if parsed is not None:
        assert parse_traceparent(parsed.header_value()) == TraceParent(
            "00", parsed.trace_id, parsed.parent_id, parsed.flags
        )


def test_trace_context_from_headers() -> None:
    ctx = trace_context(
        [(b"host", b"x"), (b"traceparent", VALID.encode()), (b"tracestate", b"a=1")]
    )
    assert ctx is not None
    assert ctx.parent.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert ctx.state == (("a", "1"),)
    # 3.2: more than one traceparent is invalid; an invalid tracestate is dropped, not fatal.
    assert trace_context([(b"traceparent", VALID.encode())] * 2) is None
    bad_state = trace_context([(b"traceparent", VALID.encode()), (b"tracestate", b"A=1")])
    assert bad_state is not None and bad_state.state == ()
    assert trace_context([(b"tracestate", b"a=1")]) is None


def test_child_keeps_the_trace_and_takes_a_new_span() -> None:
    parent = parse_traceparent(VALID)
    assert parent is not None
    child = parent.child(bytes.fromhex("0102030405060708"))
    assert child.header_value() == "00-4bf92f3577b34da6a3ce929d0e0e4736-0102030405060708-01"
    with pytest.raises(ValueError):
        parent.child(bytes(8))
