"""Each probe of ``tether conform`` quotes the RFC sentence behind its expectation, and its
level is that sentence's keyword: a SHOULD broken warns, a MUST broken fails, over real
sockets against servers broken on purpose."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.conform.broken_servers import BrokenServer, Flaws
from tether_server.conform import SMUGGLING, Target, Verdict, smuggle_probe
from tether_server.conform._report import text

PROBES = {probe.id: probe for probe in SMUGGLING}
KEYWORD = re.compile(r"\b(MUST|SHOULD|MAY)\b")


def test_every_smuggling_probe_quotes_a_sentence_carrying_its_level() -> None:
    for probe in SMUGGLING:
        keywords = set(KEYWORD.findall(probe.sentence))
        if probe.level:
            assert probe.level in keywords, probe.id
        else:
            # No level: advice ("ought to"), nothing a server is held to.
            assert "ought to" in probe.sentence and not keywords, probe.id
        assert probe.sentence.endswith(".") and "  " not in probe.sentence, probe.id


@pytest.fixture
def servers() -> Iterator[dict[str, BrokenServer]]:
    made = {
        "base": BrokenServer(Flaws()),
        "cl_over_te": BrokenServer(Flaws(cl_over_te=True)),
        "framing_error_200": BrokenServer(Flaws(framing_error_200=True)),
    }
    yield made
    for server in made.values():
        server.close()


def _probe(server: BrokenServer, probe_id: str) -> tuple[Verdict, str, str]:
    result = smuggle_probe(
        Target("127.0.0.1", server.port, b"127.0.0.1", b"/", 1.0), PROBES[probe_id]
    )
    return result.verdict, result.observed, result.sentence


@pytest.mark.parametrize("probe_id", ["chunk-size-0x", "chunk-data-overrun", "chunk-ext-lf"])
def test_invalid_chunk_framing_is_a_should_of_rfc_9112_2_2(
    servers: dict[str, BrokenServer], probe_id: str
) -> None:
    # No sentence makes a MUST of refusing a chunk line that breaks the grammar: 2.2 says a
    # server SHOULD answer 400 and close. A server that reads on gets a warning.
    verdict, observed, sentence = _probe(servers["framing_error_200"], probe_id)
    assert verdict is Verdict.WARN, observed
    assert "second request was answered" in observed
    assert "SHOULD respond with a 400 (Bad Request) response and close the connection" in sentence
    assert _probe(servers["base"], probe_id)[0] is Verdict.PASS


@pytest.mark.parametrize("flaw", ["cl_over_te", "framing_error_200"])
def test_a_parameter_on_chunked_is_a_should_but_reading_on_past_both_fields_fails(
    servers: dict[str, BrokenServer], flaw: str
) -> None:
    # RFC 9112 7.1: parameters on chunked SHOULD be an error. With Content-Length too, a server
    # that answers the request behind it broke 6.1's MUST close.
    assert PROBES["te-te-7"].level == "SHOULD"
    verdict, observed, sentence = _probe(servers[flaw], "te-te-7")
    assert verdict is Verdict.FAIL, observed
    assert "second request was answered" in observed
    assert sentence.endswith("Their presence SHOULD be treated as an error.")
    assert _probe(servers["base"], "te-te-7")[0] is Verdict.PASS


def test_the_sentence_is_in_the_text_report(servers: dict[str, BrokenServer]) -> None:
    result = smuggle_probe(
        Target("127.0.0.1", servers["cl_over_te"].port, b"127.0.0.1", b"/", 1.0), PROBES["cl-te"]
    )
    assert result.verdict is Verdict.FAIL
    assert (
        'the RFC: "Regardless, the server MUST close the connection after responding to such a '
        'request to avoid the potential attacks."'
    ) in text("url", "v", [result])
