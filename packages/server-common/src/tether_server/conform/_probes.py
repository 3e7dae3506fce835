"""The probes of ``tether conform``: vectors, request smuggling and desync, robustness.

Each probe says what a safe server does, with the RFC sentence behind it and
its strength: a MUST broken is a failure; a SHOULD (or a robustness limit)
broken is a warning; where the RFC lets a recipient accept something (a MAY),
accepting it is reported as *lenient*, never as a failure.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tether.conformance import PROTOCOL_ERROR_STATUSES, Vector, load_vectors
from tether.errors import ProtocolError
from tether.http1 import NEED_DATA, EndOfMessage, Request, Response, ServerConnection
from tether_server.conform._wire import Observation, Target, exchange


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


def vector_probe(target: Target, vector: Vector) -> Result:
    """Send one vector's bytes; judge the statuses against the vector."""
    obs = exchange(target, [vector.input], expect=_expect_methods(vector), half_close=vector.eof)
    n = len(vector.messages)
    served, rest = obs.statuses[:n], obs.statuses[n:]
    level = "MAY" if vector.strict else "MUST"
    safe = (
        f"serve {n} request(s), then refuse with {vector.status} and close"
        if vector.error
        else f"serve {n} request(s)"
    )
    verdict = Verdict.PASS
    if obs.invalid and not obs.statuses:
        verdict = Verdict.FAIL
    elif any(
        _refused(s) and not (s == 501 and m.method == b"CONNECT")  # 501: "no tunnels here"
        for s, m in zip(served, vector.messages, strict=False)
    ):
        verdict = Verdict.FAIL  # a valid request refused
    elif len(served) < n and served and (obs.closed or obs.closing[-1]):
        # RFC 9112 9.6: a server may close a persistent connection after any response; the
        # requests after it were not processed, which is safe.
        verdict = Verdict.INFO
        safe += f" (it closed after {len(served)}: allowed by RFC 9112 9.6)"
    elif len(served) < n:
        verdict = Verdict.FAIL  # a valid request not answered
    elif vector.error is not None:
        if rest and _refused(rest[0]):
            if rest[0] != vector.status:
                safe += f" (any refusal is safe; {vector.status} is the precise status)"
        elif not rest and (obs.closed or vector.eof):
            pass  # closed without an answer: safe
        elif rest and obs.closed and len(rest) == 1 and error_in_body(vector.input, vector.eof):
            verdict = Verdict.INFO
            safe = UNTESTED
        else:
            verdict = Verdict.LENIENT if vector.strict else Verdict.FAIL
    elif len(obs.statuses) > n and vector.messages and vector.messages[-1].keep_alive is False:
        verdict = Verdict.FAIL  # answered past a request that ended the connection
    return Result(
        vector.id, "vectors", vector.title, vector.rfc, level, verdict, safe, obs.summary()
    )


def vectors(target: Target) -> Iterator[Result]:
    """Every bundled request vector that holds for a server with default limits."""
    for vector in load_vectors():
        if not vector.limits:
            yield vector_probe(target, vector)


# ---- request smuggling and desync ---------------------------------------------------------------

#: What the probe's first request must come to.
REFUSE = "refuse"  # MUST (or SHOULD) answer 400 and close
CLOSE = "close"  # MAY process, MUST close the connection after responding
ACCEPT_OK = "accept-ok"  # MAY accept: accepting is lenient, refusing is strict
NO_OVERFLOW = "no-overflow"  # refuse, or wait for the whole declared size; never wrap around


@dataclass(frozen=True)
class Smuggle:
    """A request whose framing or syntax is ambiguous, followed by an ordinary request."""

    id: str
    title: str
    rfc: str
    level: str
    kind: str
    #: The RFC's rule, briefly.
    rule: str
    #: The probe request up to its body: {host} and {path} are filled in; CRLF written as \r\n.
    head: str
    body: bytes = b""


def _s(  # noqa: PLR0917 - one row of the catalogue table
    id: str, title: str, rfc: str, level: str, kind: str, rule: str, head: str, body: bytes = b""
) -> Smuggle:
    return Smuggle(id, title, rfc, level, kind, rule, head, body)


_POST = "POST {path} HTTP/1.1\r\nHost: {host}\r\n"
_TE_CL = "the server MUST close the connection after responding to a request with both"
SMUGGLING: list[Smuggle] = [
    _s(
        "cl-te",
        "CL.TE: Content-Length first, then Transfer-Encoding: chunked",
        "RFC 9112 6.1",
        "MUST",
        CLOSE,
        _TE_CL,
        _POST + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"0\r\n\r\n",
    ),
    _s(
        "te-cl",
        "TE.CL: chunked body shorter than its Content-Length",
        "RFC 9112 6.1",
        "MUST",
        CLOSE,
        _TE_CL + "; Transfer-Encoding overrides Content-Length",
        _POST + "Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n",
        b"0\r\n\r\n",
    ),
    _s(
        "te-cl-http10",
        "HTTP/1.0 with Transfer-Encoding and Content-Length",
        "RFC 9112 6.1",
        "MUST",
        CLOSE,
        "an HTTP/1.0 message with Transfer-Encoding MUST be treated as faulty framing and the connection closed",
        "POST {path} HTTP/1.0\r\nHost: {host}\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        b"0\r\n\r\n",
    ),
    _s(
        "te-http10",
        "HTTP/1.0 with Transfer-Encoding: chunked",
        "RFC 9112 6.1",
        "MUST",
        CLOSE,
        "an HTTP/1.0 message with Transfer-Encoding MUST be treated as faulty framing and the connection closed",
        "POST {path} HTTP/1.0\r\nHost: {host}\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"0\r\n\r\n",
    ),
]
for _n, (_value, _why) in enumerate(
    [
        ("xchunked", "an unknown coding"),
        ("chunked, identity", "chunked not last"),
        ("identity", "no chunked at all"),
        ("chunked\r\nTransfer-Encoding: x", "a second field puts an unknown coding last"),
        ("chunk", "a truncated coding name"),
        ('"chunked"', "a quoted coding"),
        ("chunked;q=1", "a parameter on chunked"),
    ]
):
    SMUGGLING.append(
        _s(
            f"te-te-{_n + 1}",
            f"TE.TE: Transfer-Encoding: {_value.splitlines()[0]} ({_why}) with Content-Length",
            "RFC 9112 6.3",
            "MUST",
            REFUSE,
            "chunked not the final coding: the server MUST respond 400 and close",
            _POST + f"Transfer-Encoding: {_value}\r\nContent-Length: 5\r\n\r\n",
            b"0\r\n\r\n",
        )
    )
SMUGGLING += [
    _s(
        "te-vtab",
        "TE.TE: Transfer-Encoding:\\x0bchunked (vertical tab)",
        "RFC 9110 5.5",
        "MUST",
        REFUSE,
        "a control byte makes the field value invalid; with Content-Length the framing is ambiguous",
        _POST + "Transfer-Encoding:\x0bchunked\r\nContent-Length: 5\r\n\r\n",
        b"0\r\n\r\n",
    ),
    _s(
        "cl-dup-differ",
        "two different Content-Length fields",
        "RFC 9112 6.3",
        "MUST",
        REFUSE,
        "an invalid Content-Length: the server MUST respond 400 and close",
        _POST + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"hello",
    ),
    _s(
        "cl-list-differ",
        "Content-Length: 5, 6",
        "RFC 9112 6.3",
        "MUST",
        REFUSE,
        "an invalid Content-Length: the server MUST respond 400 and close",
        _POST + "Content-Length: 5, 6\r\n\r\n",
        b"hello",
    ),
    _s(
        "cl-dup-same",
        "two identical Content-Length fields",
        "RFC 9110 8.6",
        "MAY",
        ACCEPT_OK,
        "a recipient MAY accept identical repeated values as one",
        _POST + "Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
        b"hello",
    ),
    _s(
        "cl-sign",
        "Content-Length: +5",
        "RFC 9112 6.3",
        "MUST",
        REFUSE,
        "Content-Length is 1*DIGIT: an invalid value MUST get 400 and close",
        _POST + "Content-Length: +5\r\n\r\n",
        b"hello",
    ),
    _s(
        "cl-hex",
        "Content-Length: 0x5",
        "RFC 9112 6.3",
        "MUST",
        REFUSE,
        "Content-Length is 1*DIGIT: an invalid value MUST get 400 and close",
        _POST + "Content-Length: 0x5\r\n\r\n",
        b"hello",
    ),
    _s(
        "cl-space",
        "Content-Length: 1 0",
        "RFC 9112 6.3",
        "MUST",
        REFUSE,
        "Content-Length is 1*DIGIT: an invalid value MUST get 400 and close",
        _POST + "Content-Length: 1 0\r\n\r\n",
        b"hello",
    ),
    _s(
        "ws-colon-cl",
        "Content-Length : 5 (whitespace before the colon)",
        "RFC 9112 5.1",
        "MUST",
        REFUSE,
        "a server MUST reject whitespace between a field name and colon with 400",
        _POST + "Content-Length : 5\r\n\r\n",
        b"hello",
    ),
    _s(
        "ws-colon-te",
        "Transfer-Encoding : chunked with Content-Length",
        "RFC 9112 5.1",
        "MUST",
        REFUSE,
        "a server MUST reject whitespace between a field name and colon with 400",
        _POST + "Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n",
        b"0\r\n\r\n",
    ),
    _s(
        "bare-lf-head",
        "bare LF line endings in the head",
        "RFC 9112 2.2",
        "MAY",
        ACCEPT_OK,
        "a recipient MAY recognize a single LF as a line terminator (a proxy in front may not)",
        "GET {path} HTTP/1.1\nHost: {host}\nX-Probe: lf\n\n",
    ),
    _s(
        "bare-lf-chunk",
        "bare LF after a chunk size",
        "RFC 9112 2.2",
        "MAY",
        ACCEPT_OK,
        "a recipient MAY recognize a single LF as a line terminator (a proxy in front may not)",
        _POST + "Transfer-Encoding: chunked\r\n\r\n",
        b"5\nhello\r\n0\r\n\r\n",
    ),
    _s(
        "bare-cr",
        "bare CR inside a field value",
        "RFC 9112 2.2",
        "MUST",
        ACCEPT_OK,
        "a recipient MUST treat a bare CR as invalid or replace it with SP (a replacement cannot be told apart)",
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Probe: a\rb\r\n\r\n",
    ),
    _s(
        "obs-fold",
        "obs-fold (a continuation line)",
        "RFC 9112 5.2",
        "MUST",
        ACCEPT_OK,
        "a server MUST reject obs-fold with 400 or replace it with SP before interpreting the value",
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Probe: a\r\n b\r\n\r\n",
    ),
    _s(
        "obs-fold-te",
        "obs-fold on Transfer-Encoding, with Content-Length",
        "RFC 9112 5.2",
        "MUST",
        REFUSE,
        "unfolded, this is Transfer-Encoding with Content-Length; unrecognised, it is a different framing",
        _POST + "Content-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
        b"0\r\n\r\n",
    ),
    _s(
        "nul-value",
        "NUL in a field value",
        "RFC 9110 5.5",
        "MUST",
        ACCEPT_OK,
        "a recipient MUST reject, or replace CR, LF and NUL with SP",
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Probe: a\x00b\r\n\r\n",
    ),
    _s(
        "ctl-value",
        "a control byte (0x01) in a field value",
        "RFC 9110 5.5",
        "MAY",
        ACCEPT_OK,
        "recipients MAY retain other control characters for robustness",
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Probe: a\x01b\r\n\r\n",
    ),
    _s(
        "nul-name",
        "NUL in a field name",
        "RFC 9110 5.1",
        "MUST",
        REFUSE,
        "a field name is a token: this line is not a field, the message is invalid",
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Pro\x00be: a\r\n\r\n",
    ),
    _s(
        "chunk-size-0x",
        "chunk size 0x5",
        "RFC 9112 7.1",
        "MUST",
        REFUSE,
        "chunk-size is 1*HEXDIG: the message is invalid",
        _POST + "Transfer-Encoding: chunked\r\n\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
    ),
    _s(
        "chunk-size-overflow",
        "chunk size 10000000000000005 (overflows 64 bits to 5)",
        "RFC 9112 7.1",
        "MUST",
        NO_OVERFLOW,
        "recipients MUST anticipate large chunk sizes and prevent integer overflow",
        _POST + "Transfer-Encoding: chunked\r\n\r\n",
        b"10000000000000005\r\nhello\r\n0\r\n\r\n",
    ),
    _s(
        "chunk-size-negative",
        "chunk size -5",
        "RFC 9112 7.1",
        "MUST",
        REFUSE,
        "chunk-size is 1*HEXDIG: the message is invalid",
        _POST + "Transfer-Encoding: chunked\r\n\r\n",
        b"-5\r\nhello\r\n0\r\n\r\n",
    ),
    _s(
        "chunk-size-space",
        "chunk size followed by spaces",
        "RFC 9112 7.1.1",
        "MAY",
        ACCEPT_OK,
        "BWS before a chunk extension is allowed; bare trailing spaces are not, but are harmless",
        _POST + "Transfer-Encoding: chunked\r\n\r\n",
        b"5  \r\nhello\r\n0\r\n\r\n",
    ),
    _s(
        "chunk-data-overrun",
        "chunk data longer than its size",
        "RFC 9112 7.1",
        "MUST",
        REFUSE,
        "chunk-data is followed by CRLF: anything else is invalid framing",
        _POST + "Transfer-Encoding: chunked\r\n\r\n",
        b"3\r\nhello\r\n0\r\n\r\n",
    ),
    _s(
        "chunk-ext-lf",
        "chunk extension ending in a bare LF (TERM.EXT)",
        "RFC 9112 7.1.1",
        "MUST",
        REFUSE,
        "a chunk extension is a token or quoted string; a bare LF inside it is invalid",
        _POST + "Transfer-Encoding: chunked\r\n\r\n",
        b"5;a=b\nx\r\nhello\r\n0\r\n\r\n",
    ),
    _s(
        "chunk-ext-huge",
        "a 64 KiB chunk extension",
        "RFC 9112 7.1.1",
        "SHOULD",
        REFUSE,
        "a server ought to limit chunk extensions and answer 4xx beyond the limit",
        _POST + "Transfer-Encoding: chunked\r\n\r\n",
        b"5;" + b"a" * 65536 + b"\r\nhello\r\n0\r\n\r\n",
    ),
    _s(
        "host-twice",
        "two Host fields",
        "RFC 9112 3.2",
        "MUST",
        REFUSE,
        "a server MUST respond 400 to a request with more than one Host field",
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nHost: other.example\r\n\r\n",
    ),
    _s(
        "host-missing",
        "HTTP/1.1 without Host",
        "RFC 9112 3.2",
        "MUST",
        REFUSE,
        "a server MUST respond 400 to an HTTP/1.1 request without Host",
        "GET {path} HTTP/1.1\r\n\r\n",
    ),
]

SECOND = "GET {path}{sep}tether-conform=second HTTP/1.1\r\nHost: {host}\r\n\r\n"


def smuggle_probe(target: Target, probe: Smuggle) -> Result:
    """Send the probe request and an ordinary one in the same write; judge what came back."""
    path = target.path.decode("latin-1")
    fill = {"host": target.authority.decode("latin-1"), "path": path}
    first = probe.head.format(**fill).encode("latin-1") + probe.body
    second = SECOND.format(sep="&" if "?" in path else "?", **fill).encode("latin-1")
    obs = exchange(target, [first + second], expect=(b"GET", b"GET"))
    processed = len(obs.statuses) >= 2
    verdict, safe = _judge_smuggle(probe, obs)
    if (
        verdict in (Verdict.FAIL, Verdict.WARN, Verdict.LENIENT)
        and len(obs.statuses) == 1
        and not _refused(obs.statuses[0])
        and obs.closed
        and error_in_body(first)
    ):
        verdict, safe = Verdict.INFO, UNTESTED
    observed = obs.summary()
    if processed:
        observed += "; the pipelined second request was answered"
    elif obs.statuses and not obs.closed:
        observed += "; the second request was not answered"
    return Result(
        probe.id,
        "smuggling",
        probe.title,
        probe.rfc,
        probe.level,
        verdict,
        f"{safe} ({probe.rule})",
        observed,
        processed,
    )


def _judge_smuggle(probe: Smuggle, obs: Observation) -> tuple[Verdict, str]:
    broken = Verdict.FAIL if probe.level == "MUST" else Verdict.WARN
    first = obs.statuses[0] if obs.statuses else None
    answered_second = len(obs.statuses) >= 2
    if probe.kind == REFUSE:
        safe = "answer 400 (or another 4xx) and close, never reading the next request"
        if first is None:
            if obs.closed:
                return Verdict.PASS, safe  # closed without an answer: nothing was processed
            return broken, safe  # silent: it took the bytes as a (partial) request
        if not _refused(first):
            return broken, safe
        if answered_second:
            return broken, safe
        return Verdict.PASS, safe
    if probe.kind == NO_OVERFLOW:
        safe = "refuse the size, or wait for all of it; never read it as a smaller number"
        if answered_second and first is not None and not _refused(first):
            return Verdict.FAIL, safe  # the size wrapped: the rest was read as a new request
        if first is None and not obs.closed:
            return Verdict.PASS, safe + " (it waited for the declared size)"
        return (Verdict.PASS if first is None or _refused(first) else Verdict.INFO), safe
    if probe.kind == CLOSE:
        safe = "answer 400, or process the request, and then close the connection"
        if answered_second or (first is not None and not obs.closed and not obs.closing[0]):
            return Verdict.FAIL, safe
        if first is None:
            return (Verdict.PASS if obs.closed else Verdict.FAIL), safe
        return (Verdict.PASS if _refused(first) else Verdict.LENIENT), safe
    # ACCEPT_OK: refusing is the strict choice; accepting is allowed.
    safe = "refuse with 400 and close (strict), or accept the request as one request"
    if first is None:
        return (Verdict.PASS if obs.closed else Verdict.WARN), safe
    if _refused(first):
        return (Verdict.FAIL if answered_second and probe.level == "MUST" else Verdict.PASS), safe
    return Verdict.LENIENT, safe


def smuggling(target: Target) -> Iterator[Result]:
    """Every probe of the catalogue, on its own connection."""
    for probe in SMUGGLING:
        yield smuggle_probe(target, probe)


# ---- robustness ------------------------------------------------------------------------------------


def _head_timeout(target: Target, wait: float) -> Result:
    fill = {"host": target.authority.decode("latin-1"), "path": target.path.decode("latin-1")}
    partial = "GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Slow: ".format(**fill).encode("latin-1")
    obs = exchange(target, [partial], expect=(b"GET",), wait=wait)
    safe = "close a connection whose request head does not complete in time (slow loris), ideally with 408"
    if obs.closed:
        how = "408 and close" if obs.statuses[:1] == [408] else obs.summary()
        return Result(
            "head-timeout",
            "robustness",
            "an incomplete request head (slow loris)",
            "RFC 9112 9.5",
            "",
            Verdict.PASS,
            safe,
            f"{how} after {obs.closed_after:.1f} s",
        )
    return Result(
        "head-timeout",
        "robustness",
        "an incomplete request head (slow loris)",
        "RFC 9112 9.5",
        "",
        Verdict.WARN,
        safe,
        f"still open after {wait:.1f} s: no head timeout",
    )


def _idle_timeout(target: Target, wait: float) -> Result:
    fill = {"host": target.authority.decode("latin-1"), "path": target.path.decode("latin-1")}
    request = "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".format(**fill).encode("latin-1")
    obs = exchange(target, [request], expect=(b"GET", b"GET"), wait=wait)
    safe = "close an idle keep-alive connection after a while"
    title = "an idle keep-alive connection"
    if not obs.statuses:
        return Result(
            "idle-timeout",
            "robustness",
            title,
            "RFC 9112 9.5",
            "",
            Verdict.ERROR,
            safe,
            obs.summary(),
        )
    if obs.closed:
        return Result(
            "idle-timeout",
            "robustness",
            title,
            "RFC 9112 9.5",
            "",
            Verdict.PASS,
            safe,
            f"closed {obs.closed_after:.1f} s after the request",
        )
    return Result(
        "idle-timeout",
        "robustness",
        title,
        "RFC 9112 9.5",
        "",
        Verdict.WARN,
        safe,
        f"still open after {wait:.1f} s",
    )


def _limit(
    target: Target, id: str, title: str, status: int, make: Callable[[int], bytes]
) -> Result:
    found = []
    for size in (8 << 10, 16 << 10, 64 << 10, 1 << 20):
        obs = exchange(target, [make(size)], expect=(b"GET",))
        found.append((size, obs))
        if (obs.statuses and _refused(obs.statuses[0])) or (obs.closed and not obs.statuses):
            break
    size, obs = found[-1]
    refused_at = obs.statuses[0] if obs.statuses else None
    if refused_at is not None and _refused(refused_at):
        verdict = Verdict.PASS if refused_at == status else Verdict.INFO
        observed = (
            f"{refused_at} at {size // 1024} KiB (accepted {found[-2][0] // 1024} KiB)"
            if len(found) > 1
            else f"{refused_at} at {size // 1024} KiB"
        )
    elif obs.closed and refused_at is None:
        verdict, observed = Verdict.INFO, f"closed without an answer at {size // 1024} KiB"
    else:
        verdict, observed = Verdict.WARN, f"accepted {size // 1024} KiB ({obs.summary()})"
    return Result(
        id,
        "robustness",
        title,
        "RFC 9110 15.5",
        "",
        verdict,
        f"refuse an oversized element with {status}",
        observed,
    )


def robustness(target: Target, slow_wait: float) -> Iterator[Result]:
    """Timeouts (run side by side, each bounded by ``slow_wait``) and size limits."""
    results: dict[str, Result] = {}
    threads = [
        threading.Thread(
            target=lambda: results.__setitem__("head", _head_timeout(target, slow_wait))
        ),
        threading.Thread(
            target=lambda: results.__setitem__("idle", _idle_timeout(target, slow_wait))
        ),
    ]
    for thread in threads:
        thread.start()
    host = target.authority.decode("latin-1")
    path = target.path.decode("latin-1")
    yield _limit(
        target,
        "limit-414",
        "a long request line",
        414,
        lambda n: f"GET {path}?{'a' * n} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode(),
    )
    yield _limit(
        target,
        "limit-431",
        "a long header field",
        431,
        lambda n: f"GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Big: {'a' * n}\r\n\r\n".encode(),
    )
    obs = exchange(
        target,
        [f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000000000000\r\n\r\n".encode()],
        expect=(b"GET",),
    )
    if obs.statuses[:1] == [413]:
        yield Result(
            "limit-413",
            "robustness",
            "a 1 TB Content-Length",
            "RFC 9110 15.5.14",
            "",
            Verdict.PASS,
            "refuse a body over its limit with 413 before reading it",
            "413",
        )
    else:
        yield Result(
            "limit-413",
            "robustness",
            "a 1 TB Content-Length",
            "RFC 9110 15.5.14",
            "",
            Verdict.INFO,
            "refuse a body over its limit with 413 before reading it",
            f"no body limit announced ({obs.summary()})",
        )
    for thread in threads:
        thread.join()
    yield results["head"]
    yield results["idle"]
