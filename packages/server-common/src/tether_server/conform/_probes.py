"""The verdicts of ``tether conform`` and its first group: the spec vectors.

Each probe says what a safe server does, with the RFC sentence behind it and
its strength: a MUST broken is a failure; a SHOULD (or a robustness limit)
broken is a warning; where the RFC lets a recipient accept something (a MAY),
accepting it is reported as *lenient*, never as a failure.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass

from tether.conformance import PROTOCOL_ERROR_STATUSES, Vector, load_vectors
from tether.errors import ProtocolError
from tether.http1 import NEED_DATA, EndOfMessage, Request, Response, ServerConnection
from tether_server.conform._wire import Target, exchange


class Verdict(enum.Enum):
    """The outcome of one probe."""

    PASS = "pass"
    #: A MUST was broken.
    FAIL = "fail"
    #: A SHOULD, or a robustness limit, was not met.
    WARN = "warn"
    #: The server took a leniency the RFC allows (a MAY): not a failure.
    LENIENT = "lenient"
    #: Reported for information (a measured limit, a timeout).
    INFO = "info"
    #: The probe could not run (the server was unreachable).
    ERROR = "error"
    #: The probe was not run (not asked for, or what it needs is missing).
    SKIP = "skip"


@dataclass(frozen=True)
class Counterexample:
    """A failing request stream, reduced: the exact bytes to send again to see the failure."""

    #: Each request's bytes, in the order sent.
    requests: tuple[bytes, ...]
    #: For each request, the offsets in its bytes where it was cut into separate writes.
    splits: tuple[tuple[int, ...], ...]
    #: All requests in one write (else each waited for its answer on a keep-alive connection).
    pipelined: bool
    #: How it failed.
    failure: str
    #: Whether the stream failed again when replayed on its own (if not: reported unreduced).
    reproduced: bool
    #: How many requests the failing stream had before reduction.
    reduced_from: int
    #: Replays spent reducing it, and the seconds they took.
    attempts: int
    seconds: float
    #: Whether the reduction ran to its end (False: its bound stopped it, it may shrink further).
    complete: bool

    def lines(self) -> list[str]:
        """The counterexample for a person: each request's bytes (repr) and its cuts."""
        count = len(self.requests)
        how = (
            "pipelined in one write"
            if self.pipelined
            else "sent alone"
            if count == 1
            else "sent one after another on a keep-alive connection"
        )
        if not self.attempts:
            state = "not reduced: no time given"
        elif not self.reproduced:
            state = "did not fail again on fresh connections, so not reduced"
        else:
            state = (
                f"reduced from {self.reduced_from} in {self.attempts} replays, {self.seconds:g} s"
                + ("" if self.complete else ", stopped by its bound")
            )
        out = [f"{count} request{'s' * (count != 1)} {how} ({state}): {self.failure}"]
        for n, (wire, cuts) in enumerate(zip(self.requests, self.splits), 1):
            out.append(f"request {n}: {wire!r}")
            if cuts:
                pieces = [wire[a:b] for a, b in zip((0, *cuts), (*cuts, len(wire)))]
                at = ", ".join(map(str, cuts))
                out.append(
                    f"  written in {len(pieces)} pieces, cut at byte {at}: "
                    + " + ".join(map(repr, pieces))
                )
        return out

    def as_json(self) -> dict[str, object]:
        """The fields as JSON values: each request as a Latin-1 string (one code point per
        byte, so ``.encode("latin-1")`` gives the bytes back exactly) and as its repr."""
        return dict(
            dataclasses.asdict(self),
            requests=[wire.decode("latin-1") for wire in self.requests],
            requests_repr=[repr(wire) for wire in self.requests],
            splits=[list(cuts) for cuts in self.splits],
        )


@dataclass(frozen=True)
class Result:
    """One probe's finding."""

    id: str
    group: str
    title: str
    rfc: str
    #: What the RFC asks: "MUST", "SHOULD", "MAY" or "" (robustness).
    level: str
    verdict: Verdict
    #: What a safe server does.
    safe: str
    #: What the server under test did.
    observed: str
    #: Whether a request pipelined after the probe's was answered (None: not applicable).
    second_processed: bool | None = None
    #: For a failed traffic probe: the failing stream, reduced.
    counterexample: Counterexample | None = None
    #: The RFC's own sentence behind the expectation, quoted ("" for robustness findings).
    sentence: str = ""


def _refused(status: int) -> bool:
    return status in PROTOCOL_ERROR_STATUSES or status >= 500


# ---- spec/http1 vectors ---------------------------------------------------------------------


def _expect_methods(vector: Vector) -> list[bytes]:
    methods = [m.method if m.method in (b"HEAD", b"CONNECT") else b"GET" for m in vector.messages]
    return [*methods, b"GET"] if vector.error else methods or [b"GET"]


def error_in_body(data: bytes, eof: bool = False) -> bool:
    """Whether the core refuses ``data`` only after the failing request's head was accepted.

    Such a defect lies in the body: a server whose application answers before
    reading the body never meets it, and closing the connection then is safe.
    """
    conn = ServerConnection()
    heads = complete = 0
    try:
        conn.receive_data(data)
        if eof:
            conn.receive_data(b"")
        while (event := conn.next_event()) is not NEED_DATA:
            if isinstance(event, Request):
                heads += 1
            elif isinstance(event, EndOfMessage):
                complete += 1
                conn.send(Response(200, [(b"content-length", b"0")]))
                conn.send(EndOfMessage())
                if not conn.start_next_cycle():
                    return False
            else:
                return False
    except ProtocolError:
        return heads > complete
    return False


UNTESTED = "not tested: the server answered before reading the body, then closed (point URL at an endpoint that reads request bodies)"


#: Methods whose 501 is still a refusal: every server must support GET and HEAD (RFC 9110
#: 9.1), and the vectors that carry a body use POST, where a 501 refuses the framing.
_REFUSED_BY_501 = frozenset((b"GET", b"HEAD", b"POST"))


def _not_implemented(status: int, method: bytes) -> bool:
    """A 501 to a method the server need not implement (CONNECT: no tunnels here; an
    extension method): the answer RFC 9110 9.1 asks for, not a refusal."""
    return status == 501 and method not in _REFUSED_BY_501


#: The HTTP/2 connection preface (RFC 9113 3.4). A server that speaks HTTP/2 with prior
#: knowledge (RFC 9113 3.3) answers it with an HTTP/2 SETTINGS frame: not an error.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: An answer that is not HTTP/1.x breaks a MUST whatever the vector's level: these are the
#: sentences (RFC section, text) it is reported with.
_OTHER_VERSION = (
    "RFC 9110 6.2",
    "A server MUST NOT send a version to which it is not conformant.",
)
_NOT_HTTP = (
    "RFC 9110 2.2",
    "A sender MUST NOT generate protocol elements that do not match the grammar defined by "
    "the corresponding ABNF rules.",
)


def _h2_settings(data: bytes) -> bool:
    """Whether ``data`` starts with an HTTP/2 SETTINGS frame on stream 0 (RFC 9113 6.5)."""
    return len(data) >= 9 and data[3] == 0x04 and data[5:9] == bytes(4)


def _otherwise(vector: Vector) -> tuple[Verdict, str]:
    """How a server that did not do what ``vector`` expects is judged, and why.

    ``vector.level`` is the keyword of the RFC sentence behind the outcome. Without a
    ``strict`` note the vector does what the sentence asks (MUST: fail, SHOULD: warn)
    or, for a MAY, what it leaves open: a refusal the MAY allows is reported, not
    judged. With one, the sentence allows what we refuse: a MUST or MAY that offers a
    choice (the server took the lenient one), or a SHOULD we depart from on purpose.
    """
    if vector.strict:
        if vector.level == "SHOULD":
            return (
                Verdict.PASS,
                "or do what the RFC's SHOULD asks: Tether departs from it on purpose",
            )
        return Verdict.LENIENT, f"the RFC's {vector.level} also lets a server accept it"
    if vector.level == "MUST":
        return Verdict.FAIL, ""
    if vector.level == "SHOULD":
        return Verdict.WARN, ""
    if vector.error is None:
        return Verdict.INFO, "the RFC's MAY lets a server do otherwise"
    return Verdict.LENIENT, "the RFC's MAY lets a server accept it"


def vector_probe(target: Target, vector: Vector) -> Result:
    """Send one vector's bytes; judge the statuses against the vector at its level."""
    # An error vector lingers a second for the close after the last answer: whether the
    # server closed decides between "answered, then closed" (safe) and "read on" (unsafe).
    obs = exchange(
        target,
        [vector.input],
        expect=_expect_methods(vector),
        half_close=vector.eof,
        linger=1.0 if vector.error else 0.0,
    )
    n = len(vector.messages)
    served, rest = obs.statuses[:n], obs.statuses[n:]
    safe = (
        f"serve {n} request(s), then refuse with {vector.status} and close"
        if vector.error
        else f"serve {n} request(s)"
    )
    refused_valid = any(
        _refused(s) and not _not_implemented(s, m.method)
        for s, m in zip(served, vector.messages, strict=False)
    )
    verdict = Verdict.PASS
    why = ""
    rfc, level, sentence = vector.rfc, vector.level, vector.sentence
    if obs.invalid and not obs.statuses:
        if vector.input.startswith(_H2_PREFACE) and _h2_settings(obs.raw):
            why = "or answer in HTTP/2: this server speaks it with prior knowledge, RFC 9113 3.3"
        else:
            # HTTP/1.2 echoed back, or no HTTP at all: broken whatever the vector asked.
            verdict, level = Verdict.FAIL, "MUST"
            other = re.match(rb"HTTP/\d\.\d ", obs.raw) and not obs.raw.startswith(
                (b"HTTP/1.1 ", b"HTTP/1.0 ")
            )
            rfc, sentence = _OTHER_VERSION if other else _NOT_HTTP
    elif refused_valid or (len(served) < n and not (served and (obs.closed or obs.closing[-1]))):
        # A valid request refused or left unanswered. Before an error vector's bad request
        # the requests are ordinary ones (a MUST); in a served vector they are its point.
        verdict, why = (Verdict.FAIL, "") if vector.error else _otherwise(vector)
    elif len(served) < n:
        # RFC 9112 9.6: a server may close a persistent connection after any response; the
        # requests after it were not processed, which is safe.
        verdict = Verdict.INFO
        safe += f" (it closed after {len(served)}: allowed by RFC 9112 9.6)"
    elif vector.error is not None:
        if rest and _refused(rest[0]):
            if rest[0] != vector.status:
                safe += f" (any refusal is safe; {vector.status} is the precise status)"
        elif not rest and (obs.closed or vector.eof):
            pass  # closed without an answer: safe
        elif rest and obs.closed and len(rest) == 1 and error_in_body(vector.input, vector.eof):
            verdict = Verdict.INFO
            safe = UNTESTED
        elif not rest and vector.strict and vector.level == "SHOULD":
            # Neither refused nor served: not what the SHOULD asks either.
            verdict = Verdict.WARN
        else:
            verdict, why = _otherwise(vector)
    elif len(obs.statuses) > n and vector.messages and vector.messages[-1].keep_alive is False:
        verdict, why = _otherwise(vector)  # answered past a request that ended the connection
    if why:
        safe += f" ({why})"
    return Result(
        vector.id,
        "vectors",
        vector.title,
        rfc,
        level,
        verdict,
        safe,
        obs.summary(),
        sentence=sentence,
    )


def vectors(target: Target) -> Iterator[Result]:
    """Every bundled request vector that holds for a server with default limits."""
    for vector in load_vectors():
        if not vector.limits:
            yield vector_probe(target, vector)
