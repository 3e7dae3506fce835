"""Every response vector of spec/http1/responses.json against ClientConnection.

Fed whole, byte by byte, and split at Hypothesis-chosen points, with the same
responses (or the same error) out each way.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import SPEC
from tether.conformance import ResponseVector, judge_client, load_response_vectors, run_client

VECTORS = load_response_vectors(SPEC / "http1")
IDS = [v.id for v in VECTORS]


def test_vector_count_and_fields() -> None:
    assert len(VECTORS) >= 55
    assert len(set(IDS)) == len(IDS)
    for vector in VECTORS:
        assert vector.rfc.startswith("RFC "), vector.id
    # Both kinds: responses read, and errors raised.
    assert sum(v.error is None for v in VECTORS) >= 25
    assert sum(v.error is not None for v in VECTORS) >= 25


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_whole(vector: ResponseVector) -> None:
    assert judge_client(vector, run_client(vector)) == []


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_byte_by_byte(vector: ResponseVector) -> None:
    pieces = [vector.input[i : i + 1] for i in range(len(vector.input))]
    assert judge_client(vector, run_client(vector, pieces)) == []


@given(data=st.data())
def test_random_splits(data: st.DataObject) -> None:
    vector = data.draw(st.sampled_from(VECTORS))
    n = len(vector.input)
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=8)))
    pieces = [vector.input[a:b] for a, b in zip([0, *cuts], [*cuts, n])]
    assert judge_client(vector, run_client(vector, pieces)) == [], vector.id
