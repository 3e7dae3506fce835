"""The request smuggling and desync probes of ``tether conform`` (RFC 9112 6.1, 6.3, 7.1).

Each row of the catalogue names the bytes sent, the RFC's rule (briefly, and its own sentence
quoted) and what a safe server does. A level is the keyword of the sentence quoted: where the
bytes merely break the grammar and no sentence says more, that is RFC 9112 2.2's SHOULD (answer
400 and close), not a MUST.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from tether_server.conform._probes import UNTESTED, Result, Verdict, _refused, error_in_body
from tether_server.conform._wire import Observation, Target, exchange

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
    #: The RFC's own sentence behind the expectation, quoted exactly; its keyword is ``level``.
    sentence: str = ""


def _s(  # noqa: PLR0917 - one row of the catalogue table
    id: str,
    title: str,
    rfc: str,
    level: str,
    kind: str,
    rule: str,
    head: str,
    body: bytes = b"",
    *,
    sentence: str,
) -> Smuggle:
    return Smuggle(id, title, rfc, level, kind, rule, head, body, sentence)


# ---- the RFC sentences (RFC 9110 and RFC 9112, quoted exactly) --------------------------------

#: RFC 9112 6.1.
TE_AND_CL = (
    "Regardless, the server MUST close the connection after responding to such a request to "
    "avoid the potential attacks."
)
#: RFC 9112 6.1.
TE_IN_HTTP10 = (
    "A server or client that receives an HTTP/1.0 message containing a Transfer-Encoding header "
    "field MUST treat the message as if the framing is faulty, even if a Content-Length is "
    "present, and close the connection after processing the message."
)
#: RFC 9112 6.3.
CHUNKED_NOT_FINAL = (
    "If a Transfer-Encoding header field is present in a request and the chunked transfer "
    "coding is not the final encoding, the message body length cannot be determined reliably; "
    "the server MUST respond with the 400 (Bad Request) status code and then close the "
    "connection."
)
#: RFC 9112 6.3 (the error is the invalid Content-Length of the sentence before it).
INVALID_CL = (
    "If the unrecoverable error is in a request message, the server MUST respond with a 400 "
    "(Bad Request) status code and then close the connection."
)
#: RFC 9112 2.2: bytes that do not match the grammar, where no other sentence applies.
NOT_THE_GRAMMAR = (
    "When a server listening only for HTTP request messages, or processing what appears from "
    "the start-line to be an HTTP request message, receives a sequence of octets that does not "
    "match the HTTP-message grammar aside from the robustness exceptions listed above, the "
    "server SHOULD respond with a 400 (Bad Request) response and close the connection."
)
#: RFC 9112 5.1.
SPACE_BEFORE_COLON = (
    "A server MUST reject, with a response status code of 400 (Bad Request), any received "
    "request message that contains whitespace between a header field name and colon."
)
#: RFC 9112 2.2 (the start-line and fields only: not chunk lines).
BARE_LF = (
    "Although the line terminator for the start-line and fields is the sequence CRLF, a "
    "recipient MAY recognize a single LF as a line terminator and ignore any preceding CR."
)
#: RFC 9112 5.2.
OBS_FOLD = (
    "A server that receives an obs-fold in a request message that is not within a "
    '"message/http" container MUST either reject the message by sending a 400 (Bad Request), '
    "preferably with a representation explaining that obsolete line folding is unacceptable, "
    "or replace each received obs-fold with one or more SP octets prior to interpreting the "
    "field value or forwarding the message downstream."
)
#: RFC 9110 5.5.
CR_LF_NUL = (
    "Field values containing CR, LF, or NUL characters are invalid and dangerous, due to the "
    "varying ways that implementations might parse and interpret those characters; a recipient "
    "of CR, LF, or NUL within a field value MUST either reject the message or replace each of "
    "those characters with SP before further processing or forwarding of that message."
)
#: RFC 9112 3.2.
HOST = (
    "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1 request message "
    "that lacks a Host header field and to any request message that contains more than one "
    "Host header field line or a Host header field with an invalid field value."
)


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
        sentence=TE_AND_CL,
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
        sentence=TE_AND_CL,
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
        sentence=TE_IN_HTTP10,
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
        sentence=TE_IN_HTTP10,
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
            sentence=CHUNKED_NOT_FINAL,
        )
    )
SMUGGLING.append(
    _s(
        "te-te-7",
        "TE.TE: Transfer-Encoding: chunked;q=1 (a parameter on chunked) with Content-Length",
        "RFC 9112 7.1",
        # chunked is the final coding here, so 6.3's MUST does not apply; what does is 7.1's
        # SHOULD on parameters, and 6.1's MUST close for Transfer-Encoding with Content-Length.
        "SHOULD",
        REFUSE,
        "chunked has no parameters; with Content-Length too, the connection MUST close after "
        "the response (RFC 9112 6.1)",
        _POST + "Transfer-Encoding: chunked;q=1\r\nContent-Length: 5\r\n\r\n",
        b"0\r\n\r\n",
        sentence=(
            "The chunked coding does not define any parameters. "
            "Their presence SHOULD be treated as an error."
        ),
    )
)
SMUGGLING += [
    _s(
        "te-vtab",
        "TE.TE: Transfer-Encoding:\\x0bchunked (vertical tab)",
        "RFC 9112 6.3",
        "MUST",
        REFUSE,
        "\\x0bchunked is not the chunked coding (RFC 9110 5.5: a control byte makes the value invalid)",
        _POST + "Transfer-Encoding:\x0bchunked\r\nContent-Length: 5\r\n\r\n",
        b"0\r\n\r\n",
        sentence=CHUNKED_NOT_FINAL,
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
        sentence=INVALID_CL,
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
        sentence=INVALID_CL,
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
        sentence=(
            "Likewise, a sender MUST NOT forward a message with a Content-Length header field "
            "value that does not match the ABNF above, with one exception: a recipient of a "
            "Content-Length header field value consisting of the same decimal value repeated as "
            'a comma-separated list (e.g, "Content-Length: 42, 42") MAY either reject the '
            "message as invalid or replace that invalid field value with a single instance of "
            "the decimal value, since this likely indicates that a duplicate was generated or "
            "combined by an upstream message processor."
        ),
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
        sentence=INVALID_CL,
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
        sentence=INVALID_CL,
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
        sentence=INVALID_CL,
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
        sentence=SPACE_BEFORE_COLON,
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
        sentence=SPACE_BEFORE_COLON,
    ),
    _s(
        "bare-lf-head",
        "bare LF line endings in the head",
        "RFC 9112 2.2",
        "MAY",
        ACCEPT_OK,
        "a recipient MAY recognize a single LF as a line terminator (a proxy in front may not)",
        "GET {path} HTTP/1.1\nHost: {host}\nX-Probe: lf\n\n",
        sentence=BARE_LF,
    ),
    _s(
        "bare-lf-chunk",
        "bare LF after a chunk size",
        "RFC 9112 2.2",
        "SHOULD",
        REFUSE,
        "2.2's MAY for a bare LF covers the start-line and fields, not chunk lines (chunk = chunk-size [ chunk-ext ] CRLF)",
        _POST + "Transfer-Encoding: chunked\r\n\r\n",
        b"5\nhello\r\n0\r\n\r\n",
        sentence=NOT_THE_GRAMMAR,
    ),
    _s(
        "bare-cr",
        "bare CR inside a field value",
        "RFC 9112 2.2",
        "MUST",
        ACCEPT_OK,
        "a recipient MUST treat a bare CR as invalid or replace it with SP (a replacement cannot be told apart)",
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Probe: a\rb\r\n\r\n",
        sentence=(
            "A recipient of such a bare CR MUST consider that element to be invalid or replace "
            "each bare CR with SP before processing the element or forwarding the message."
        ),
    ),
    _s(
        "obs-fold",
        "obs-fold (a continuation line)",
        "RFC 9112 5.2",
        "MUST",
        ACCEPT_OK,
        "a server MUST reject obs-fold with 400 or replace it with SP before interpreting the value",
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Probe: a\r\n b\r\n\r\n",
        sentence=OBS_FOLD,
    ),
    _s(
        "obs-fold-te",
        "obs-fold on Transfer-Encoding, with Content-Length",
        "RFC 9112 5.2",
        "MUST",
        CLOSE,
        "replaced with SP, this is Transfer-Encoding with Content-Length: close after responding (RFC 9112 6.1); unrecognised, it is a different framing",
        _POST + "Content-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
        b"0\r\n\r\n",
        sentence=OBS_FOLD,
    ),
    _s(
        "nul-value",
        "NUL in a field value",
        "RFC 9110 5.5",
        "MUST",
        ACCEPT_OK,
        "a recipient MUST reject, or replace CR, LF and NUL with SP",
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Probe: a\x00b\r\n\r\n",
        sentence=CR_LF_NUL,
    ),
    _s(
        "ctl-value",
        "a control byte (0x01) in a field value",
        "RFC 9110 5.5",
        "MAY",
        ACCEPT_OK,
        "recipients MAY retain other control characters for robustness",
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Probe: a\x01b\r\n\r\n",
        sentence=(
            "Field values containing other CTL characters are also invalid; however, recipients "
            "MAY retain such characters for the sake of robustness when they appear within a "
            "safe context (e.g., an application-specific quoted string that will not be "
            "processed by any downstream HTTP parser)."
        ),
    ),
    _s(
        "nul-name",
        "NUL in a field name",
        "RFC 9112 2.2",
        "SHOULD",
        REFUSE,
        "a field name is a token (RFC 9110 5.1): this line is not a field, the message is invalid",
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Pro\x00be: a\r\n\r\n",
        sentence=NOT_THE_GRAMMAR,
    ),
    _s(
        "chunk-size-0x",
        "chunk size 0x5",
        "RFC 9112 2.2",
        "SHOULD",
        REFUSE,
        "chunk-size is 1*HEXDIG (RFC 9112 7.1): the message is invalid",
        _POST + "Transfer-Encoding: chunked\r\n\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
        sentence=NOT_THE_GRAMMAR,
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
        sentence=(
            "Therefore, recipients MUST anticipate potentially large hexadecimal numerals and "
            "prevent parsing errors due to integer conversion overflows or precision loss due to "
            "integer representation."
        ),
    ),
    _s(
        "chunk-size-negative",
        "chunk size -5",
        "RFC 9112 2.2",
        "SHOULD",
        REFUSE,
        "chunk-size is 1*HEXDIG (RFC 9112 7.1): the message is invalid",
        _POST + "Transfer-Encoding: chunked\r\n\r\n",
        b"-5\r\nhello\r\n0\r\n\r\n",
        sentence=NOT_THE_GRAMMAR,
    ),
    _s(
        "chunk-size-space",
        "chunk size followed by spaces",
        "RFC 9112 2.2",
        "SHOULD",
        REFUSE,
        'BWS is allowed before a chunk extension\'s ";" (RFC 9112 7.1.1); bare trailing spaces are not',
        _POST + "Transfer-Encoding: chunked\r\n\r\n",
        b"5  \r\nhello\r\n0\r\n\r\n",
        sentence=NOT_THE_GRAMMAR,
    ),
    _s(
        "chunk-data-overrun",
        "chunk data longer than its size",
        "RFC 9112 2.2",
        "SHOULD",
        REFUSE,
        "chunk-data is followed by CRLF (RFC 9112 7.1): anything else is invalid framing",
        _POST + "Transfer-Encoding: chunked\r\n\r\n",
        b"3\r\nhello\r\n0\r\n\r\n",
        sentence=NOT_THE_GRAMMAR,
    ),
    _s(
        "chunk-ext-lf",
        "chunk extension ending in a bare LF (TERM.EXT)",
        "RFC 9112 2.2",
        "SHOULD",
        REFUSE,
        "a chunk extension is a token or quoted string (RFC 9112 7.1.1); a bare LF inside it is invalid",
        _POST + "Transfer-Encoding: chunked\r\n\r\n",
        b"5;a=b\nx\r\nhello\r\n0\r\n\r\n",
        sentence=NOT_THE_GRAMMAR,
    ),
    _s(
        "chunk-ext-huge",
        "a 64 KiB chunk extension",
        "RFC 9112 7.1.1",
        # "ought to" is advice, not a BCP 14 keyword: a robustness limit.
        "",
        REFUSE,
        "a server ought to limit chunk extensions and answer 4xx beyond the limit",
        _POST + "Transfer-Encoding: chunked\r\n\r\n",
        b"5;" + b"a" * 65536 + b"\r\nhello\r\n0\r\n\r\n",
        sentence=(
            "A server ought to limit the total length of chunk extensions received in a request "
            "to an amount reasonable for the services provided, in the same way that it applies "
            "length limitations and timeouts for other parts of a message, and generate an "
            "appropriate 4xx (Client Error) response if that amount is exceeded."
        ),
    ),
    _s(
        "host-twice",
        "two Host fields",
        "RFC 9112 3.2",
        "MUST",
        REFUSE,
        "a server MUST respond 400 to a request with more than one Host field",
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nHost: other.example\r\n\r\n",
        sentence=HOST,
    ),
    _s(
        "host-missing",
        "HTTP/1.1 without Host",
        "RFC 9112 3.2",
        "MUST",
        REFUSE,
        "a server MUST respond 400 to an HTTP/1.1 request without Host",
        "GET {path} HTTP/1.1\r\n\r\n",
        sentence=HOST,
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
        sentence=probe.sentence,
    )


def _judge_smuggle(probe: Smuggle, obs: Observation) -> tuple[Verdict, str]:
    broken = Verdict.FAIL if probe.level == "MUST" else Verdict.WARN
    first = obs.statuses[0] if obs.statuses else None
    answered_second = len(obs.statuses) >= 2
    if probe.kind == REFUSE:
        safe = "answer 400 (or another 4xx) and close, never reading the next request"
        head = probe.head.lower()
        if answered_second and "transfer-encoding" in head and "content-length" in head:
            # Whatever the level of the rule refusing the probe, with both fields the server
            # MUST close after its response (RFC 9112 6.1): reading on is a failure.
            return Verdict.FAIL, safe
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
