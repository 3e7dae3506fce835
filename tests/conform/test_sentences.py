"""Each probe of ``tether conform`` quotes the RFC sentence behind its expectation, and its
level is that sentence's keyword: a SHOULD broken warns, a MUST broken fails, over real
sockets against servers broken on purpose."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest

from tests.conform.broken_peers import LaxWebSocketServer, ReversingServer
from tests.conform.broken_servers import BrokenServer, Flaws, Threaded
from tether_server.conform import SMUGGLING, Target, Verdict, run, smuggle_probe, target_from_url
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


class _ShortHeadServer(Threaded):
    """Refuses any head over 4 KiB with 400 (not 414 or 431); answers the rest 200."""

    def __init__(self) -> None:
        super().__init__(self.serve)

    def serve(self, sock: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(65536)
            if not data:
                return
            head += data
            if len(head) > 4096:
                sock.sendall(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                # Read the rest before closing: unread bytes would reset the answer away.
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(65536):
                    pass
                return
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def test_limits_are_the_servers_but_their_status_is_the_rfcs() -> None:
    server = _ShortHeadServer()
    try:
        target = target_from_url(f"http://127.0.0.1:{server.port}/", 1.0)
        results = {r.id: r for r in run(target, ["robustness"], slow_wait=0.5)}
    finally:
        server.close()
    # RFC 9112 3: a request-target too long MUST get 414; a 400 fails.
    uri = results["limit-414"]
    assert (uri.level, uri.verdict) == ("MUST", Verdict.FAIL), uri
    assert uri.sentence.startswith("A server that receives a request-target longer than")
    # RFC 9110 5.4: header fields too large MUST get "an appropriate 4xx": a 400 meets it.
    fields = results["limit-431"]
    assert (fields.level, fields.verdict) == ("MUST", Verdict.PASS), fields
    assert "431 is the precise status" in fields.safe
    assert "MUST respond with an appropriate 4xx (Client Error) status code" in fields.sentence
    # The timeouts ask nothing (no level); what they quote is what allows closing.
    for id in ("head-timeout", "idle-timeout"):
        assert results[id].level == "" and "MAY" in results[id].sentence, results[id]
    assert results["limit-413"].sentence == ""


def test_traffic_and_write_timeout_quote_their_sentences() -> None:
    server = ReversingServer()
    try:
        target = target_from_url(f"http://127.0.0.1:{server.port}/", 1.0)
        found = run(target, ["traffic", "write-timeout"], requests=8, seed=1, shrink_seconds=0.5)
        results = {r.id: r for r in found}
    finally:
        server.close()
    pipelined = results["traffic-pipelined"]
    assert pipelined.verdict is Verdict.FAIL, pipelined
    assert pipelined.sentence.endswith(
        "it MUST send the corresponding responses in the same order that the requests were "
        "received."
    )
    assert "MUST read the entire request message body" in results["traffic-keep-alive"].sentence
    # Not run (no --slow): nothing was asked of the server, so nothing is quoted.
    assert results["write-timeout"].verdict is Verdict.SKIP
    assert results["write-timeout"].sentence == ""


def test_every_websocket_probe_quotes_a_sentence_carrying_its_level() -> None:
    # The lax server takes every frame, so every probe runs (the verdicts are not the point).
    server = LaxWebSocketServer()
    try:
        target = target_from_url(f"ws://127.0.0.1:{server.port}/", 0.2)
        results = {r.id: r for r in run(target, ["websocket"])}
    finally:
        server.close()
    assert len(results) == 25
    for result in results.values():
        if result.level:
            assert result.level in KEYWORD.findall(result.sentence), result
        else:
            # ws-echo-text: the RFC asks no server to echo; nothing to quote.
            assert result.sentence == "", result
    assert results["ws-version"].sentence.startswith(
        "If this version does not match a version understood by the server, the server MUST "
        "abort the WebSocket handshake"
    )
    # The frame breaks its sender's MUST; of the receiver RFC 6455 asks validation (10.7).
    assert results["ws-control-long"].sentence == (
        "All control frames MUST have a payload length of 125 bytes or less and MUST NOT be "
        "fragmented."
    )
    assert results["ws-continuation-first"].sentence == (
        "Incoming data MUST always be validated by both clients and servers."
    )
