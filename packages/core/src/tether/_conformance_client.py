"""Response vectors: what a client reads (the client half of :mod:`tether.conformance`).

A response vector (``spec/http1/responses.json``) is the requests a client sent,
the bytes the server answered with, and the responses the client must read or
the error it must raise. :func:`run_client` drives a
:class:`tether.http1.ClientConnection`; :func:`judge_client` compares. Import
these names from :mod:`tether.conformance`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tether._vector_files import b, documents, fields
from tether.errors import ProtocolError
from tether.http1 import (
    NEED_DATA,
    PAUSED,
    ClientConnection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    HTTPState,
    InformationalResponse,
    Request,
    Response,
)
from tether.limits import Limits

_END = EndOfMessage()

#: The response-vector schema :func:`load_response_vectors` reads.
RESPONSE_SCHEMA = "tether-http1-response-vectors/1"


@dataclass(frozen=True, slots=True)
class ExpectedResponse:
    """One response a response vector says a client must read, whole."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    trailers: tuple[tuple[bytes, bytes], ...]
    #: Statuses of the 1xx responses before it.
    informational: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ResponseVector:
    """One client-side case: requests sent, bytes received, responses or an error expected."""

    id: str
    rfc: str
    title: str
    #: Methods of the requests sent, in order; ``"GET upgrade"`` asks to upgrade.
    requests: tuple[str, ...]
    input: bytes
    responses: tuple[ExpectedResponse, ...]
    #: Name of the error class (in :mod:`tether.errors` or :mod:`tether.http1`) raised after them.
    error: str | None = None
    eof: bool = False
    #: Whether the connection may carry another request afterwards (``None``: not checked).
    keep_alive: bool | None = None
    #: After a 101 or a 2xx to CONNECT: the bytes handed to the new protocol.
    tunnel: bytes | None = None
    limits: dict[str, int] = field(default_factory=dict)
    strict: str | None = None


@dataclass(slots=True)
class ClientOutcome:
    """What the client core read from a response vector's input."""

    responses: list[ExpectedResponse] = field(default_factory=list)
    error: ProtocolError | None = None
    keep_alive: bool = True
    tunnel: bytes | None = None


def load_response_vectors(directory: str | Path | None = None) -> list[ResponseVector]:
    """Every response vector in ``directory`` (default: the bundled ``http1`` set)."""
    vectors = []
    for doc in documents(directory, RESPONSE_SCHEMA):
        for case in doc["cases"]:
            error = case.get("error")
            vectors.append(
                ResponseVector(
                    id=case["id"],
                    rfc=case["rfc"],
                    title=case["title"],
                    requests=tuple(case["requests"]),
                    input=b(case["input"]),
                    responses=tuple(
                        ExpectedResponse(
                            status=r["status"],
                            headers=fields(r["headers"]),
                            body=b(r["body"]),
                            trailers=fields(r["trailers"]),
                            informational=tuple(i[0] for i in r.get("informational", ())),
                        )
                        for r in case["responses"]
                    ),
                    error=error["class"] if error else None,
                    eof=case.get("eof", False),
                    keep_alive=case.get("keep_alive"),
                    tunnel=b(case["tunnel"]) if "tunnel" in case else None,
                    limits=case.get("limits", {}),
                    strict=case.get("strict"),
                )
            )
    return vectors


def request_for(method: str) -> Request:
    """The request a response vector's ``requests`` entry stands for."""
    headers = [(b"host", b"example.com")]
    if method == "GET upgrade":
        method = "GET"
        headers += [(b"connection", b"upgrade"), (b"upgrade", b"websocket")]
    target = b"example.com:443" if method == "CONNECT" else b"/"
    return Request(b(method), target, headers)


def run_client(vector: ResponseVector, pieces: Iterable[bytes] | None = None) -> ClientOutcome:
    """Send the vector's requests on a fresh client connection and feed it ``pieces``."""
    conn = ClientConnection(Limits(**vector.limits) if vector.limits else Limits())
    outcome = ClientOutcome()
    for method in vector.requests:
        conn.send(request_for(method))
        conn.send(_END)
    informational: list[int] = []
    current: list[Response] = []
    body: list[bytes] = []

    def drain() -> None:
        while True:
            event = conn.next_event()
            if event is NEED_DATA or event is PAUSED or isinstance(event, ConnectionClosed):
                return
            if isinstance(event, InformationalResponse):
                informational.append(event.status_code)
            elif isinstance(event, Response):
                current[:] = [event]
                body.clear()
                if conn.their_state is HTTPState.SWITCHED_PROTOCOL:
                    _finish(EndOfMessage())
            elif isinstance(event, Data):
                body.append(event.data)
            elif isinstance(event, EndOfMessage):
                _finish(event)

    def _finish(end: EndOfMessage) -> None:
        head = current.pop()
        outcome.responses.append(
            ExpectedResponse(
                head.status_code,
                tuple(head.headers),
                b"".join(body),
                tuple(end.trailers),
                tuple(informational),
            )
        )
        informational.clear()

    try:
        for piece in [vector.input] if pieces is None else pieces:
            if piece:
                conn.receive_data(piece)
                drain()
        if vector.eof:
            conn.receive_data(b"")
        drain()
    except ProtocolError as exc:
        outcome.error = exc
    outcome.keep_alive = conn.keep_alive
    if conn.their_state is HTTPState.SWITCHED_PROTOCOL:
        outcome.tunnel = conn.trailing_data
    return outcome


def judge_client(vector: ResponseVector, outcome: ClientOutcome) -> list[str]:
    """Differences between what the client core read and what the vector expects."""
    problems = []
    if list(vector.responses) != outcome.responses:
        problems.append(f"responses {outcome.responses!r} != {list(vector.responses)!r}")
    if vector.error is None:
        if outcome.error is not None:
            problems.append(f"unexpected {type(outcome.error).__name__}: {outcome.error}")
        if vector.keep_alive is not None and vector.keep_alive != outcome.keep_alive:
            problems.append(f"keep_alive {outcome.keep_alive} != {vector.keep_alive}")
        if vector.tunnel != outcome.tunnel:
            problems.append(f"tunnel {outcome.tunnel!r} != {vector.tunnel!r}")
    elif outcome.error is None:
        problems.append(f"expected {vector.error}, got no error")
    elif vector.error not in {cls.__name__ for cls in type(outcome.error).__mro__}:
        problems.append(
            f"expected {vector.error}, got {type(outcome.error).__name__}: {outcome.error}"
        )
    return problems


__all__ = [
    "RESPONSE_SCHEMA",
    "ClientOutcome",
    "ExpectedResponse",
    "ResponseVector",
    "judge_client",
    "load_response_vectors",
    "request_for",
    "run_client",
]
