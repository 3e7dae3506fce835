"""Conformance vectors: load them, run them against the core, judge any server's answers.

A vector (``spec/http1/*.json``) is request bytes in and, out, either the
messages a server must see or the error it must refuse them with (class and
HTTP status), each naming the RFC section it checks, how strongly the RFC
asks for that outcome (``level``: MUST, SHOULD or MAY) and the RFC's own
sentence saying so. This module stays sans I/O like the rest of the core:

- :func:`run_on_core` drives a :class:`tether.http1.ServerConnection` with the
  input split any way you like and returns what it saw;
- :func:`judge_core` compares that with the vector;
- :func:`judge_responses` reads the raw bytes some server sent back for a
  vector's input and says whether its answers agree (status codes only, since
  the application behind a server is unknown). Moving the bytes over a socket
  is the caller's part (see ``tests/conformance.py``).

The client half (response vectors: :func:`load_response_vectors`,
:func:`run_client`, :func:`judge_client`) lives in ``_conformance_client.py``
and is imported from here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path

from tether._conformance_client import (
    RESPONSE_SCHEMA,
    ClientOutcome,
    ExpectedResponse,
    ResponseVector,
    judge_client,
    load_response_vectors,
    request_for,
    run_client,
)
from tether._vector_files import b, documents, fields
from tether.errors import ProtocolError
from tether.http1 import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
    ServerConnection,
)
from tether.limits import Limits

__all__ = [
    "LEVELS",
    "PROTOCOL_ERROR_STATUSES",
    "REQUEST_SCHEMA",
    "RESPONSE_SCHEMA",
    "ClientOutcome",
    "ExpectedMessage",
    "ExpectedResponse",
    "Outcome",
    "ResponseVector",
    "Vector",
    "judge_client",
    "judge_core",
    "judge_responses",
    "load_response_vectors",
    "load_vectors",
    "parse_responses",
    "request_for",
    "run_client",
    "run_on_core",
    "vectors_version",
]

#: Statuses that mean "the server refused the request as a protocol error".
PROTOCOL_ERROR_STATUSES = frozenset((400, 408, 413, 414, 417, 431, 501, 505))


@dataclass(frozen=True, slots=True)
class ExpectedMessage:
    """One request a vector says the server must see, whole."""

    method: bytes
    target: bytes
    version: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    trailers: tuple[tuple[bytes, bytes], ...]
    #: After this request, must the connection stay open? ``None``: not checked.
    keep_alive: bool | None = None
    #: Must the request be reported as expecting 100-continue? ``None``: not checked.
    expect_continue: bool | None = None
    #: May a 1xx response (here a 103) reach this client? (RFC 9110 15.2: not an HTTP/1.0
    #: one.) ``None``: not checked.
    informational: bool | None = None


@dataclass(frozen=True, slots=True)
class Vector:
    """One conformance case."""

    id: str
    rfc: str
    title: str
    input: bytes
    messages: tuple[ExpectedMessage, ...]
    #: Name of the error class (in :mod:`tether.errors`) raised after ``messages``.
    error: str | None = None
    #: The HTTP status a server answers that error with.
    status: int | None = None
    #: Feed EOF after the input.
    eof: bool = False
    #: ``Limits`` fields to override for this case.
    limits: dict[str, int] = field(default_factory=dict)
    #: Where we are stricter than the RFC requires, why. A server that does otherwise is
    #: then within the RFC: see :attr:`level` for how its deviation is judged.
    strict: str | None = None
    area: str = ""
    #: How strongly the RFC backs this outcome: ``"MUST"``, ``"SHOULD"`` or ``"MAY"``, the
    #: BCP 14 keyword of :attr:`sentence`. A server that does otherwise broke a MUST (a
    #: failure), did not follow a SHOULD (a warning), or took a MAY (allowed). With a
    #: ``strict`` note the sentence allows what we refuse: a MUST or MAY that offers the
    #: server a choice (taking the other one is lenient), or a SHOULD we depart from on
    #: purpose (following it is what the RFC asks). Default ``"MUST"``, or ``"MAY"`` for a
    #: vector with a ``strict`` note.
    level: str = "MUST"
    #: The RFC's own sentence behind :attr:`level`, quoted verbatim ("" if none is given).
    sentence: str = ""

    def make_limits(self) -> Limits:
        """The :class:`Limits` this vector runs under."""
        return Limits(**self.limits) if self.limits else Limits()


@dataclass(slots=True)
class Outcome:
    """What the core did with a vector's input."""

    messages: list[ExpectedMessage] = field(default_factory=list)
    error: ProtocolError | None = None
    closed: bool = False


#: The request-vector schema :func:`load_vectors` reads; other files in a directory are skipped.
REQUEST_SCHEMA = "tether-http1-vectors/1"

#: The values a vector's ``level`` may take (RFC 2119 keywords, strongest first).
LEVELS = ("MUST", "SHOULD", "MAY")


def vectors_version() -> str:
    """The version of the bundled vectors: the release they match and a digest of their bytes.

    ``"<tether version>+<first 12 hex digits of a SHA-256 over every bundled file>"``;
    two installs with the same string run the same cases.
    """
    base = resources.files("tether") / "vectors"
    digest = hashlib.sha256()
    for area in sorted(base.iterdir(), key=lambda e: e.name):
        if not area.is_dir():
            continue
        for entry in sorted(area.iterdir(), key=lambda e: e.name):
            digest.update(f"{area.name}/{entry.name}\0".encode())
            digest.update(entry.read_bytes())
    return f"{_tether_version()}+{digest.hexdigest()[:12]}"


def _tether_version() -> str:
    try:
        return metadata.version("tether")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


def load_vectors(directory: str | Path | None = None) -> list[Vector]:
    """Every request vector in the ``*.json`` files of ``directory``, in file and case order.

    Without ``directory``, the set bundled with the package (a copy of the
    repository's ``spec/http1``; see :func:`vectors_version`). Files of
    another schema (such as the response vectors) are skipped.
    """
    vectors = []
    for doc in documents(directory, REQUEST_SCHEMA):
        for case in doc["cases"]:
            error = case.get("error")
            vectors.append(
                Vector(
                    id=case["id"],
                    rfc=case["rfc"],
                    title=case["title"],
                    input=b(case["input"]),
                    messages=tuple(
                        ExpectedMessage(
                            method=b(m["method"]),
                            target=b(m["target"]),
                            version=b(m["version"]),
                            headers=fields(m["headers"]),
                            body=b(m["body"]),
                            trailers=fields(m["trailers"]),
                            keep_alive=m.get("keep_alive"),
                            expect_continue=m.get("expect_continue"),
                            informational=m.get("informational"),
                        )
                        for m in case["messages"]
                    ),
                    error=error["class"] if error else None,
                    status=error["status"] if error else None,
                    eof=case.get("eof", False),
                    limits=case.get("limits", {}),
                    strict=case.get("strict"),
                    area=doc["area"],
                    level=_level(case),
                    sentence=case.get("sentence", ""),
                )
            )
    return vectors


def _level(case: dict[str, object]) -> str:
    # A strict note means the RFC allows more than we do: without a stated level, a MAY.
    level = case.get("level") or ("MAY" if case.get("strict") else "MUST")
    if level not in LEVELS:
        raise ValueError(f"vector {case['id']}: level {level!r} is not one of {LEVELS}")
    return str(level)


_RESPONSE = Response(200, [(b"content-length", b"0")])
# A server that does not tunnel refuses CONNECT (a 2xx would turn the connection into a tunnel).
_NO_TUNNEL = Response(501, [(b"content-length", b"0")])
_HINTS = InformationalResponse(103, [(b"link", b"</style.css>; rel=preload")])
_END = EndOfMessage()


def run_on_core(vector: Vector, pieces: Iterable[bytes] | None = None) -> Outcome:
    """Feed ``pieces`` (default: the whole input at once) to a fresh server connection.

    Each request head is answered with a 103 (Early Hints), each complete request
    with an empty 200 (a CONNECT with 501: no tunnel), and the next cycle is
    started while the connection stays persistent, as a server would.
    """
    conn = ServerConnection(vector.make_limits())
    outcome = Outcome()
    current: dict[str, object] = {}
    body: list[bytes] = []

    def drain() -> bool:
        """Take events until the core needs data; False once the connection is over."""
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                return True
            if event is PAUSED:  # pragma: no cover - we always answer before asking again
                return False
            if isinstance(event, Request):
                current["request"] = event
                current["expect_continue"] = conn.expects_continue
                current["informational"] = conn.send(_HINTS) != b""
                body.clear()
            elif isinstance(event, Data):
                body.append(event.data)
            elif isinstance(event, EndOfMessage):
                request = current["request"]
                assert isinstance(request, Request)
                conn.send(_NO_TUNNEL if request.method == b"CONNECT" else _RESPONSE)
                conn.send(_END)
                outcome.messages.append(
                    ExpectedMessage(
                        method=request.method,
                        target=request.target,
                        version=request.http_version,
                        headers=tuple(request.headers),
                        body=b"".join(body),
                        trailers=tuple(event.trailers),
                        keep_alive=conn.keep_alive,
                        expect_continue=bool(current["expect_continue"]),
                        informational=bool(current["informational"]),
                    )
                )
                if not conn.start_next_cycle():
                    return False
            elif isinstance(event, ConnectionClosed):
                outcome.closed = True
                return False

    try:
        for piece in [vector.input] if pieces is None else pieces:
            if not piece:
                continue  # b"" would mean EOF
            conn.receive_data(piece)
            if not drain():
                return outcome
        if vector.eof:
            conn.receive_data(b"")
            drain()
    except ProtocolError as exc:
        outcome.error = exc
    return outcome


def judge_core(vector: Vector, outcome: Outcome) -> list[str]:
    """Differences between what the core did and what the vector expects (empty: agreed)."""
    problems = []
    got = outcome.messages
    if len(got) != len(vector.messages):
        problems.append(f"expected {len(vector.messages)} messages, got {len(got)}")
    for i, (want, have) in enumerate(zip(vector.messages, got)):
        for name in ("method", "target", "version", "headers", "body", "trailers"):
            if getattr(want, name) != getattr(have, name):
                problems.append(
                    f"message {i}: {name} {getattr(have, name)!r} != {getattr(want, name)!r}"
                )
        for name in ("keep_alive", "expect_continue", "informational"):
            if getattr(want, name) is not None and getattr(want, name) != getattr(have, name):
                problems.append(
                    f"message {i}: {name} {getattr(have, name)!r} != {getattr(want, name)!r}"
                )
    if vector.error is None:
        if outcome.error is not None:
            problems.append(f"unexpected {type(outcome.error).__name__}: {outcome.error}")
    elif outcome.error is None:
        problems.append(f"expected {vector.error} ({vector.status}), got no error")
    else:
        names = {cls.__name__ for cls in type(outcome.error).__mro__}
        if vector.error not in names:
            problems.append(f"expected {vector.error}, got {type(outcome.error).__name__}")
        if outcome.error.status_hint != vector.status:
            problems.append(f"expected status {vector.status}, got {outcome.error.status_hint}")
    return problems


def parse_responses(data: bytes, *, head_only: Sequence[bool] = ()) -> list[int]:
    """Status codes of the final responses in ``data`` (1xx responses are skipped).

    Bodies are skipped by Content-Length or chunked framing; a response with
    neither runs to the end of ``data``. Parsing stops at the first thing that
    is not a response. ``head_only[i]`` says the i-th response has no body.
    """
    statuses: list[int] = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0 or not data.startswith(b"HTTP/1.", pos):
            break
        lines = data[pos:end].split(b"\r\n")
        try:
            status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            break
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        pos = end + 4
        if status < 200:
            continue
        no_body = (len(statuses) < len(head_only) and head_only[len(statuses)]) or status in (
            204,
            304,
        )
        statuses.append(status)
        if no_body:
            continue
        if b"content-length" in headers:
            pos += int(headers[b"content-length"])
        elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            while True:
                line_end = data.find(b"\r\n", pos)
                if line_end < 0:
                    return statuses
                size = int(data[pos:line_end].split(b";")[0], 16)
                if size == 0:
                    # The trailer section (maybe empty) ends at the next empty line.
                    section_end = data.find(b"\r\n\r\n", line_end)
                    if section_end < 0:
                        return statuses
                    pos = section_end + 4
                    break
                pos = line_end + 2 + size + 2
        else:
            break
    return statuses


def judge_responses(vector: Vector, data: bytes) -> list[str]:
    """Whether a server's raw answer bytes to ``vector.input`` agree with the vector.

    Each expected message must get a response that is not a protocol error;
    an expected error must then get its status. After EOF a server may also
    just close, so an error with ``eof`` accepts either.
    """
    statuses = parse_responses(data)
    problems = []
    n = len(vector.messages)
    served = statuses[:n]
    # 501 to CONNECT is the answer of a server that offers no tunnels, not a refusal.
    bad = [
        s
        for s, message in zip(served, vector.messages, strict=False)
        if s in PROTOCOL_ERROR_STATUSES and not (s == 501 and message.method == b"CONNECT")
    ]
    if len(served) < n:
        problems.append(f"expected {n} answered requests, got {len(served)} ({statuses})")
    elif bad:
        problems.append(f"valid requests refused with {bad}")
    if vector.error is not None:
        rest = statuses[n:]
        if rest[:1] != [vector.status] and not (vector.eof and not rest):
            problems.append(f"expected status {vector.status} after {n} responses, got {rest}")
    elif len(statuses) > n and vector.messages and vector.messages[-1].keep_alive is False:
        problems.append(f"answered more requests than expected: {statuses}")
    return problems
