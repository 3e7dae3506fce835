"""Run the spec/http1 vectors against any HTTP/1.1 server over real sockets.

    from tests.conformance import check_server
    assert check_server("127.0.0.1", port) == []

Each vector's bytes go out on a fresh connection (half-closed after them when
the vector says EOF); the answers come back until the expected number of
responses has arrived, the server closes, or ``timeout`` passes; then
``tether.conformance.judge_responses`` compares status codes. Vectors that
change ``Limits`` are skipped, since the server runs with its own limits.
"""

from __future__ import annotations

import socket
import time

from tests.conftest import SPEC
from tether.conformance import Vector, judge_responses, load_vectors, parse_responses


def server_vectors() -> list[Vector]:
    """The vectors that hold for a server running with default limits."""
    return [v for v in load_vectors(SPEC / "http1") if not v.limits]


def exchange(host: str, port: int, vector: Vector, timeout: float = 5.0) -> bytes:
    """Send ``vector.input`` on a new connection; return what the server answered."""
    wanted = len(vector.messages) + (1 if vector.error else 0)
    deadline = time.monotonic() + timeout
    data = b""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        try:
            sock.sendall(vector.input)
            if vector.eof:
                sock.shutdown(socket.SHUT_WR)
            while len(parse_responses(data)) < wanted:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                sock.settimeout(left)
                piece = sock.recv(65536)
                if not piece:
                    break
                data += piece
        except (TimeoutError, ConnectionError):
            pass  # judged on what arrived
    return data


def check_server(host: str, port: int, *, timeout: float = 5.0) -> list[str]:
    """Problems found running every applicable vector against ``host:port`` (empty: none)."""
    problems = []
    for vector in server_vectors():
        answer = exchange(host, port, vector, timeout)
        problems.extend(f"{vector.id} ({vector.rfc}): {p}" for p in judge_responses(vector, answer))
    return problems
