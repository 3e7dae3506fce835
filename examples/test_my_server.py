"""Property tests for YOUR running HTTP/1.1 server, with Hypothesis and ``tether.strategies``.

Start your server, then::

    pip install tether hypothesis pytest
    TETHER_TEST_URL=http://127.0.0.1:8000/ pytest examples/test_my_server.py

(``TETHER_TEST_EXAMPLES``: how many examples per test, default 100;
``TETHER_TEST_TIMEOUT``: seconds to wait for an answer, default 5.)

Every generated request is valid (RFC 9110, RFC 9112): methods (also unknown tokens),
targets, field values with obs-text and optional whitespace, bodies framed by
Content-Length or chunked with extensions and trailers. So whatever your application
answers, the server must answer each request exactly once, with a response that
parses, and pipelined requests in order. When a test fails, Hypothesis shrinks the
request to a small one that still fails and prints it.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from urllib.parse import urlsplit

from hypothesis import HealthCheck, given, settings

from tether.http1 import NEED_DATA, ClientConnection, Data, EndOfMessage, Request, Response
from tether.strategies import GeneratedRequest, request_streams, requests

URL = urlsplit(os.environ.get("TETHER_TEST_URL", "http://127.0.0.1:8000/"))
HOST, PORT = URL.hostname or "127.0.0.1", URL.port or 80
AUTHORITY = URL.netloc.encode()
TIMEOUT = float(os.environ.get("TETHER_TEST_TIMEOUT", "5"))
KNOWN_METHODS = {b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"}
SETTINGS = settings(
    max_examples=int(os.environ.get("TETHER_TEST_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def aimed(gen: GeneratedRequest) -> GeneratedRequest:
    """The request with this server's authority (generated ones say example.com)."""
    headers = tuple((n, AUTHORITY if n.lower() == b"host" else v) for n, v in gen.headers)
    target = gen.target.replace(b"http://example.com", b"http://" + AUTHORITY, 1)
    return dataclasses.replace(gen, headers=headers, target=target)


def exchange(batch: list[GeneratedRequest]) -> list[tuple[int, bytes]]:
    """Send the requests in one write; read (status, body) of each response with the core.

    Fewer answers than requests only if the server closed after a response that said
    ``Connection: close`` (RFC 9112 9.6 allows it).
    """
    conn = ClientConnection()
    for gen in batch:  # tell the client role what was asked (HEAD has no body, 1.0 closes)
        conn.send(Request(gen.method, gen.target, list(gen.wire_headers()), gen.version))
        if gen.body:
            conn.send(Data(gen.body))
        conn.send(EndOfMessage(list(gen.trailers) if gen.chunks is not None else []))
    answers: list[tuple[int, bytes]] = []
    with socket.create_connection((HOST, PORT), timeout=TIMEOUT) as sock:
        sock.sendall(b"".join(gen.to_bytes() for gen in batch))
        status, body = 0, b""
        while len(answers) < len(batch):
            event = conn.next_event()  # raises if the response is not valid HTTP/1.1
            if event is NEED_DATA:
                data = sock.recv(65536)
                if not data:
                    assert not conn.keep_alive, f"closed after {len(answers)} of {len(batch)}"
                    break
                conn.receive_data(data)
            elif isinstance(event, Response):
                status, body = event.status_code, b""
            elif isinstance(event, Data):
                body += event.data
            elif isinstance(event, EndOfMessage):
                answers.append((status, body))
    return answers


@SETTINGS
@given(requests())
def test_each_valid_request_gets_one_response(gen: GeneratedRequest) -> None:
    gen = aimed(gen)
    answers = exchange([gen])
    assert len(answers) == 1, "no response"
    ((status, _),) = answers
    if gen.method in KNOWN_METHODS:
        assert status != 400, "a valid request was refused"


@SETTINGS
@given(request_streams(max_requests=4))
def test_pipelined_requests_are_answered_in_order(batch: list[GeneratedRequest]) -> None:
    # Compared with the answers to the same requests sent alone: the application must
    # answer the same request the same way (an echo, a fixed page) for this to hold.
    batch = [aimed(gen) for gen in batch]
    alone = [answer for gen in batch for answer in exchange([gen])]
    together = exchange(batch)
    assert together == alone[: len(together)], "answers out of order, or a request refused"
