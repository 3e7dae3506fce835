"""``tether conform`` judges each vector at its level, over real sockets.

A MUST broken fails; a SHOULD not followed warns; where the RFC lets a server be lenient
(a MAY), or asks for what a strict vector refuses (rl-version-1-2: SHOULD serve HTTP/1.2
as 1.1), the server is not failed. Only a failure changes the exit status.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.conform.broken_servers import BrokenServer, Flaws, Threaded
from tether.conformance import load_vectors
from tether_server.conform import Result, Target, Verdict, exit_status, vector_probe
from tether_server.conform._report import text

VECTORS = {v.id: v for v in load_vectors()}


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, BrokenServer]]:
    made = {
        "base": BrokenServer(Flaws()),
        # Serves HTTP/1.2 as 1.1, answers 417 to unknown expectations, keeps DEL and
        # other controls in values: each a choice the RFC leaves to the server.
        "lenient": BrokenServer(Flaws(http_1_2=True, expect_417=True, ctl_values=True)),
        "framing_error_200": BrokenServer(Flaws(framing_error_200=True)),
    }
    yield made
    for server in made.values():
        server.close()


def probe(server: BrokenServer, vector_id: str) -> Result:
    return vector_probe(
        Target("127.0.0.1", server.port, b"127.0.0.1", b"/", 1.0), VECTORS[vector_id]
    )


@pytest.mark.parametrize(
    ("vector_id", "lenient", "base"),
    [
        # Serving HTTP/1.2 is what RFC 9110 6.2 asks (SHOULD); our 505 is the strict choice.
        ("rl-version-1-2", Verdict.PASS, Verdict.PASS),
        # RFC 9110 10.1.1: 417 to an unknown expectation is a MAY: reported, not judged.
        ("c-expect-other", Verdict.INFO, Verdict.PASS),
        # RFC 9110 5.5: recipients MAY retain other control characters.
        ("f-value-del", Verdict.LENIENT, Verdict.PASS),
        ("f-value-control", Verdict.LENIENT, Verdict.PASS),
    ],
)
def test_a_lenient_server_is_not_failed(
    servers: dict[str, BrokenServer], vector_id: str, lenient: Verdict, base: Verdict
) -> None:
    result = probe(servers["lenient"], vector_id)
    assert result.verdict is lenient, result
    assert (result.level, result.sentence) == (
        VECTORS[vector_id].level,
        VECTORS[vector_id].sentence,
    )
    assert probe(servers["base"], vector_id).verdict is base


def test_what_the_lenient_server_did_is_shown(servers: dict[str, BrokenServer]) -> None:
    served = probe(servers["lenient"], "rl-version-1-2")
    assert "200" in served.observed and "SHOULD asks" in served.safe
    assert "417" in probe(servers["lenient"], "c-expect-other").observed


@pytest.mark.parametrize(
    ("vector_id", "verdict"),
    [
        # The base server refuses any empty line before a request-line: RFC 9112 2.2
        # asks it to ignore at least one (SHOULD: a warning) ...
        ("rl-leading-crlf", Verdict.WARN),
        ("c-crlf-between", Verdict.WARN),
        # ... and ignoring four is beyond that: refusing them is only reported.
        ("rl-leading-crlf-4", Verdict.INFO),
        # It does not check the Host value: RFC 9112 3.2 says MUST.
        ("h-space", Verdict.FAIL),
    ],
)
def test_each_level_has_its_verdict(
    servers: dict[str, BrokenServer], vector_id: str, verdict: Verdict
) -> None:
    assert probe(servers["base"], vector_id).verdict is verdict


def test_a_broken_must_still_fails(servers: dict[str, BrokenServer]) -> None:
    # Content-Length: -1 answered 200 and read on: RFC 9112 6.3 says MUST answer 400.
    result = probe(servers["framing_error_200"], "cl-negative")
    assert (result.verdict, result.level) == (Verdict.FAIL, "MUST")
    assert "MUST respond with a 400" in result.sentence
    assert probe(servers["base"], "cl-negative").verdict is Verdict.PASS


def test_the_report_quotes_the_sentence(servers: dict[str, BrokenServer]) -> None:
    report = text("http://x/", "v", [probe(servers["lenient"], "c-expect-other")])
    assert (
        "info    c-expect-other: other expectations are not 100-continue  [RFC 9110 10.1.1 MAY]"
        in report
    )
    assert (
        'the RFC: "A server that receives an Expect field value containing a member other' in report
    )
    assert "result: passed every MUST" in report


def _replying(reply: bytes) -> Threaded:
    """A server that reads one request head, writes ``reply`` and waits for the client to go."""

    def serve(sock: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
            data += chunk
        if reply:
            sock.sendall(reply)
        while sock.recv(65536):
            pass

    return Threaded(serve)


@pytest.mark.parametrize(
    ("vector_id", "reply", "verdict", "rfc"),
    [
        # gunicorn's way: the request's version echoed. No server conforms to HTTP/1.2,
        # so this breaks a MUST of RFC 9110 6.2 whatever the vector's own level says.
        (
            "rl-version-1-2",
            b"HTTP/1.2 200 OK\r\ncontent-length: 0\r\n\r\n",
            Verdict.FAIL,
            "RFC 9110 6.2",
        ),
        ("rl-origin", b"hello\r\n\r\n", Verdict.FAIL, "RFC 9110 2.2"),
        # hypercorn's and granian's way: HTTP/2 with prior knowledge (RFC 9113 3.3), an
        # empty SETTINGS frame on stream 0.
        ("rl-h2-preface", b"\x00\x00\x00\x04\x00\x00\x00\x00\x00", Verdict.PASS, "RFC 9113 3.4"),
        # Closing at EOF without answering a whole request: RFC 9112 9.5, MAY close at any time.
        ("c-eof-after-request", b"", Verdict.INFO, "RFC 9112 9.6, 9.5"),
    ],
)
def test_answers_that_are_not_http_1(
    vector_id: str, reply: bytes, verdict: Verdict, rfc: str
) -> None:
    server = _replying(reply)
    try:
        result = probe(server, vector_id)
    finally:
        server.close()
    assert (result.verdict, result.rfc.split(";")[0]) == (verdict, rfc), result
    if verdict is Verdict.FAIL:
        assert result.level == "MUST" and "MUST NOT" in result.sentence


def _result(verdict: Verdict, level: str) -> Result:
    return Result("x", "vectors", "t", "RFC 9110 1", level, verdict, "safe", "observed")


def test_only_a_broken_must_sets_the_exit_status() -> None:
    allowed = [
        _result(Verdict.PASS, "MUST"),
        _result(Verdict.WARN, "SHOULD"),
        _result(Verdict.WARN, ""),
        _result(Verdict.LENIENT, "MAY"),
        _result(Verdict.INFO, "MAY"),
        _result(Verdict.SKIP, ""),
    ]
    assert exit_status(allowed) == 0
    assert exit_status([*allowed, _result(Verdict.FAIL, "MUST")]) == 1
    # A probe that could not run leaves its MUST unchecked: not a pass either.
    assert exit_status([*allowed, _result(Verdict.ERROR, "MUST")]) == 1
