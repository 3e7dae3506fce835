"""Each request vector says how strongly the RFC backs its outcome, with the RFC's sentence.

``level`` is the BCP 14 keyword of ``sentence`` (RFC 9110 2.2: only the all-capitals
forms are requirements, and REQUIRED/SHALL mean MUST, RECOMMENDED means SHOULD,
OPTIONAL means MAY). ``tether conform`` fails a server only where a vector's level is
a MUST, so a level set too high fails servers that follow the RFC: the vectors an
audit found misjudged are pinned here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import SPEC
from tether.conformance import LEVELS, Vector, load_vectors

VECTORS = load_vectors(SPEC / "http1")
BY_ID = {v.id: v for v in VECTORS}

#: The BCP 14 keywords of each level (RFC 2119 1-5); "MUST NOT" and "SHOULD NOT" contain
#: their level's word.
KEYWORDS = {
    "MUST": ("MUST", "REQUIRED", "SHALL"),
    "SHOULD": ("SHOULD", "RECOMMENDED"),
    "MAY": ("MAY", "OPTIONAL"),
}


def keywords(sentence: str) -> set[str]:
    """The levels whose all-capitals keywords occur in ``sentence``."""
    return {
        level
        for level, words in KEYWORDS.items()
        if any(re.search(rf"\b{word}\b", sentence) for word in words)
    }


#: The audit of issue 16 (point 3): vector id -> the level the RFC text gives it.
PINNED = {
    # RFC 9110 6.2: a recipient SHOULD process HTTP/1.2 as 1.1; our 505 departs from it.
    "rl-version-1-2": "SHOULD",
    # RFC 9110 10.1.1: a server MAY answer 417 to an expectation it does not know.
    "c-expect-other": "MAY",
    # RFC 9110 5.5: recipients MAY retain other control characters (the smuggling
    # probe ctl-value rates the same behaviour MAY).
    "f-value-del": "MAY",
    "f-value-control": "MAY",
    # RFC 9112 2.2: SHOULD ignore at least one empty line before a request-line. Four go
    # beyond "at least one": ignoring them is a recovery (RFC 9110 2.4, MAY).
    "rl-leading-crlf": "SHOULD",
    "rl-leading-crlf-4": "MAY",
    "c-crlf-between": "SHOULD",
    # RFC 9112 6.1: an unknown transfer coding SHOULD get 501.
    "te-gzip-chunked": "SHOULD",
    "te-two-fields": "SHOULD",
    # RFC 9112 7.1.2: a recipient MAY discard trailer fields; we refuse these.
    "ch-trailer-forbidden-cl": "MAY",
    "ch-trailer-forbidden-te": "MAY",
    "ch-trailer-forbidden-host": "MAY",
    "ch-trailer-forbidden-content-type": "MAY",
    # RFC 9110 8.6: a 19-digit length is valid; the MUST is only "no overflow", which a
    # server may meet by refusing it (we do: strict) or by waiting for the body.
    "cl-too-many-digits": "MUST",
    # Specific MUSTs stay MUSTs.
    "h-missing-11": "MUST",
    "f-space-before-colon": "MUST",
    "cl-negative": "MUST",
    "te-chunked-gzip": "MUST",
}


@pytest.mark.parametrize(("vector_id", "level"), sorted(PINNED.items()))
def test_audited_levels(vector_id: str, level: str) -> None:
    assert BY_ID[vector_id].level == level


def test_a_server_that_serves_http_1_2_is_within_the_rfc() -> None:
    # Our 505 is a deliberate departure from the SHOULD: the strict note says why.
    vector = BY_ID["rl-version-1-2"]
    assert vector.status == 505 and vector.strict and "smuggling" in vector.strict
    assert "SHOULD process the message" in vector.sentence
    # And too many digits is refused by choice, not by the RFC.
    assert BY_ID["cl-too-many-digits"].strict


def test_every_error_vector_has_a_level_and_its_sentence() -> None:
    for vector in VECTORS:
        if vector.error is None:
            continue
        assert vector.level in LEVELS, vector.id
        assert vector.sentence, vector.id
        assert keywords(vector.sentence), (vector.id, vector.sentence)
        assert vector.level in keywords(vector.sentence), (vector.id, vector.sentence)


def test_every_vector_the_runner_judges_quotes_its_sentence() -> None:
    # tether conform runs every vector without limits, served ones included.
    for vector in VECTORS:
        assert vector.level in LEVELS, vector.id
        if vector.limits:
            continue
        assert vector.sentence.strip(), vector.id
        assert vector.sentence.endswith("."), (vector.id, vector.sentence)
        found = keywords(vector.sentence)
        # A sentence may lack a keyword only where the RFC has none (GET with a body:
        # "might lead some implementations to reject the request").
        assert not found or vector.level in found, (vector.id, vector.sentence)


def test_strict_is_only_on_refusals() -> None:
    # "We are stricter than the RFC": only meaningful where we refuse something.
    assert [v.id for v in VECTORS if v.strict and v.error is None] == []


def _write(directory: Path, case: dict[str, object]) -> None:
    base: dict[str, object] = {
        "id": "x",
        "rfc": "RFC 9112 2.2",
        "title": "t",
        "input": "GET / HTTP/1.1\r\n\r\n",
        "messages": [],
        "error": {"class": "BadRequest", "status": 400},
    }
    doc = {"schema": "tether-http1-vectors/1", "area": "a", "cases": [base | case]}
    (directory / "a.json").write_text(json.dumps(doc))


@pytest.mark.parametrize(
    ("case", "level"),
    [
        ({}, "MUST"),
        ({"strict": "why"}, "MAY"),
        ({"strict": "why", "level": "SHOULD"}, "SHOULD"),
        ({"level": "MAY", "sentence": "A recipient MAY do it."}, "MAY"),
    ],
)
def test_loader_defaults(tmp_path: Path, case: dict[str, object], level: str) -> None:
    _write(tmp_path, case)
    (vector,) = load_vectors(tmp_path)
    assert isinstance(vector, Vector)
    assert vector.level == level
    assert vector.sentence == case.get("sentence", "")


def test_loader_refuses_an_unknown_level(tmp_path: Path) -> None:
    _write(tmp_path, {"level": "should"})
    with pytest.raises(ValueError, match="level 'should'"):
        load_vectors(tmp_path)
