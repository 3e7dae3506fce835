"""gunicorn's request corpus (../shared/conformance/gunicorn_requests.json) against the core.

Only the cases gunicorn ran under its default settings are used, and the core
runs with gunicorn's default limits (request line 4094, field 8190, 100
fields). Any parse error counts as a match for an invalid case. Where we and
gunicorn disagree, ``DISAGREEMENTS`` names the case and the reason; the test
fails if a listed case starts agreeing or an unlisted one disagrees, so the
table is always the truth. Skipped when the shared folder is absent.

Many valid cases are HTTP/1.1 requests without Host, which RFC 9112 3.2
requires us to refuse; the second test adds a Host field to those and compares
again, so that rule does not hide any other difference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from tests.conftest import SHARED_CONFORMANCE
from tests.core._drive import Seen, serve
from tether.errors import ProtocolError
from tether.limits import Limits
from tether.strategies import effective_headers

CORPUS = SHARED_CONFORMANCE / "gunicorn_requests.json"
pytestmark = pytest.mark.skipif(not CORPUS.exists(), reason="../shared/conformance not present")

# gunicorn counts the CRLF in its 8190-byte field limit; ours excludes it.
GUNICORN_LIMITS = Limits(max_request_line=4094, max_header_line=8188, max_header_count=100)

_NO_HOST = "RFC 9112 3.2: 'A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1 request message that lacks a Host header field'"
_UNKNOWN_CODING = "RFC 9112 6.1: 'A server that receives a request message with a transfer coding it does not understand SHOULD respond with 501 (Not Implemented)'; gunicorn passes the coded body on"

#: case id -> why we differ (as is, then after adding Host).
DISAGREEMENTS: dict[str, str] = {
    **{
        f"valid/{n}": _NO_HOST
        for n in (
            "004",
            "005",
            "006",
            "007",
            "009",
            "010",
            "011",
            "012",
            "013",
            "014",
            "018",
            "021",
            "022",
            "023",
            "025",
            "025_line",
            "029",
            "030",
            "031",
            "100",
        )
    },
    "valid/027": "RFC 9112 3.2 / RFC 3986 2: the request-target is US-ASCII; raw bytes above 0x7F must be percent-encoded (gunicorn accepts them)",
    "valid/040": "gunicorn drops fields whose names contain '_' (its header_map default); '_' is a tchar (RFC 9110 5.6.2), so the core reports them - the WSGI server is where the CGI-name clash matters",
    "valid/099": "the case's Content-Length (17914) is larger than the body bytes stored (8599): a conforming parser waits for the rest and fails at EOF; gunicorn's harness only reads what is there",
    "valid/rfc9112_smuggle_gzip_chunked_01": _UNKNOWN_CODING,
    "valid/rfc9112_smuggle_te_identity_chunked_01": _UNKNOWN_CODING
    + " ('identity' is no longer a registered transfer coding)",
    "valid/rfc9112_target_absolute_userinfo_01": "RFC 9110 4.2.4: a recipient SHOULD treat "
    "userinfo in an http(s) target as an error; gunicorn passes it on",
}
#: After adding Host, these still differ for the reasons above.
STILL_DIFFERENT_WITH_HOST = {
    "valid/005": "a raw '#' in the target: no request-target form has a fragment (RFC 9112 3.2; "
    "RFC 9110 4.2.5: a fragment is not sent), so we answer 400 (spec vector rl-target-fragment); "
    "gunicorn splits it off as the fragment",
    "valid/009": "Transfer-Encoding: identity with Content-Length: " + _UNKNOWN_CODING,
    "valid/025": _UNKNOWN_CODING,
    "valid/025_line": _UNKNOWN_CODING,
    "valid/027": DISAGREEMENTS["valid/027"],
    "valid/029": "Transfer-Encoding: identity then chunked: " + _UNKNOWN_CODING,
    "valid/030": "Transfer-Encoding: identity then chunked: " + _UNKNOWN_CODING,
    "valid/031": "the method '-BLARGH' is a valid token; gunicorn's Host-less case is fine once Host is added",
    "valid/012": "RFC 9110 6.5.1: fields that describe 'content format' (Content-Type) are not suitable as trailers; we refuse them there, gunicorn passes them",
    "valid/040": DISAGREEMENTS["valid/040"],
    "valid/099": DISAGREEMENTS["valid/099"],
    "valid/rfc9112_smuggle_gzip_chunked_01": _UNKNOWN_CODING,
    "valid/rfc9112_smuggle_te_identity_chunked_01": DISAGREEMENTS[
        "valid/rfc9112_smuggle_te_identity_chunked_01"
    ],
    "valid/rfc9112_target_absolute_userinfo_01": DISAGREEMENTS[
        "valid/rfc9112_target_absolute_userinfo_01"
    ],
}
del STILL_DIFFERENT_WITH_HOST["valid/031"]  # agrees once Host is there (kept above as a note)


@dataclass
class Case:
    id: str
    raw: bytes
    valid: bool
    messages: list[dict[str, object]]


def load_cases() -> list[Case]:
    if not CORPUS.exists():
        return []
    doc = json.loads(CORPUS.read_text("utf-8"))
    return [
        Case(c["id"], c["raw"].encode("latin-1"), not c["expect_error"], c["messages"])
        for c in doc["cases"]
        if c["gunicorn_settings"] is None
    ]


def _same(case: Case, seen: list[Seen]) -> bool:
    if len(seen) != len(case.messages):
        return False
    for want, got in zip(case.messages, seen):
        headers = [
            (str(n).lower().encode("latin-1"), str(v).encode("latin-1")) for n, v in want["headers"]
        ]  # type: ignore[attr-defined]
        headers = effective_headers(got.request.target, headers)
        if (
            got.request.method != str(want["method"]).encode("latin-1")
            or got.request.target != str(want["uri"]).encode("latin-1")
            or got.request.http_version != str(want["version"]).encode()
            or list(got.request.headers) != headers
            or got.body != str(want["body"]).encode("latin-1")
        ):
            return False
    return True


def agrees(case: Case, raw: bytes) -> bool:
    try:
        seen, _ = serve([raw], GUNICORN_LIMITS, eof=True)
    except ProtocolError:
        return not case.valid
    return case.valid and _same(case, seen)


def _with_host(raw: bytes) -> bytes:
    """Add a Host field to each HTTP/1.1 head that lacks one (adjusting nothing else)."""
    out = []
    for head in raw.split(b"\r\n\r\n"):
        first, sep, rest = head.partition(b"\r\n")
        if first.endswith(b" HTTP/1.1") and b"\r\nhost:" not in (b"\r\n" + rest).lower():
            out.append(first + b"\r\nHost: example.com" + (sep + rest if sep else b""))
        else:
            out.append(head)
    return b"\r\n\r\n".join(out)


CASES = load_cases()


def test_agreement_as_is() -> None:
    differ = {case.id for case in CASES if not agrees(case, case.raw)}
    assert differ == set(DISAGREEMENTS), (differ - set(DISAGREEMENTS), set(DISAGREEMENTS) - differ)
    print(f"\ngunicorn corpus, default settings: {len(CASES) - len(differ)}/{len(CASES)} agree")


def test_agreement_with_host_added() -> None:
    differ = set()
    for case in CASES:
        lacks_host = DISAGREEMENTS.get(case.id) == _NO_HOST
        raw = _with_host(case.raw) if lacks_host else case.raw
        if not case.valid or not agrees(case, raw):
            # Added Host changes what gunicorn reported as fields: compare minus Host.
            if case.valid and _agrees_ignoring_added_host(case, raw):
                continue
            if not case.valid and agrees(case, raw):
                continue
            differ.add(case.id)
    assert differ == set(STILL_DIFFERENT_WITH_HOST), (
        differ - set(STILL_DIFFERENT_WITH_HOST),
        set(STILL_DIFFERENT_WITH_HOST) - differ,
    )
    print(f"\nwith Host added: {len(CASES) - len(differ)}/{len(CASES)} agree")


def _agrees_ignoring_added_host(case: Case, raw: bytes) -> bool:
    try:
        seen, _ = serve([raw], GUNICORN_LIMITS, eof=True)
    except ProtocolError:
        return False
    for got in seen:
        got.request = type(got.request)(
            got.request.method,
            got.request.target,
            [f for f in got.request.headers if f != (b"host", b"example.com")],
            got.request.http_version,
        )
    return _same(case, seen)
