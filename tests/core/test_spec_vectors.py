"""Every vector in spec/http1 against the core: fed whole, byte by byte, and at random splits.

A vector names its RFC section; where we are stricter than the RFC requires,
its ``strict`` field says which sentence allows us to be and why we are.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import SPEC
from tether.conformance import Vector, judge_core, load_vectors, run_on_core

VECTORS = load_vectors(SPEC / "http1")
IDS = [v.id for v in VECTORS]


def test_vector_count_and_fields() -> None:
    assert len(VECTORS) >= 150
    assert len(set(IDS)) == len(IDS)
    for vector in VECTORS:
        assert vector.rfc.startswith("RFC "), vector.id
        assert (vector.error is None) == (vector.status is None), vector.id


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_whole(vector: Vector) -> None:
    assert judge_core(vector, run_on_core(vector)) == []


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_byte_by_byte(vector: Vector) -> None:
    pieces = [vector.input[i : i + 1] for i in range(len(vector.input))]
    assert judge_core(vector, run_on_core(vector, pieces)) == []


@given(data=st.data())
def test_random_splits(data: st.DataObject) -> None:
    vector = data.draw(st.sampled_from(VECTORS))
    n = len(vector.input)
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=8)))
    pieces = [vector.input[a:b] for a, b in zip([0, *cuts], [*cuts, n])]
    assert judge_core(vector, run_on_core(vector, pieces)) == [], vector.id
