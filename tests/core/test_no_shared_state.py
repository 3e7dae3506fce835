"""Nothing one client sends stays behind where another client could observe it.

A process-wide table filled from request bytes is a timing oracle (a hit is faster: "did
someone send this X-Api-Key?") and, filled before the limits run, a way round them. These
tests run whole exchanges for "client A" (secrets in fields, odd chunk sizes, unusual
Connection and Host values, absolute-form targets, responses with Set-Cookie) and a refused
97 KB head, and check that no module global of the core changed: every dict, set, list and
bytearray has the same contents, and no global was rebound. The one exception is the Date
header of the current second (``_send._date_cache``), which holds the clock, not client bytes.
"""

from __future__ import annotations

import contextlib
import sys
from types import ModuleType

import pytest

import tether
import tether.conformance
import tether.http1
import tether.serving
from tether.errors import HeadTooLarge, ProtocolError
from tether.http1 import (
    NEED_DATA,
    Data,
    EndOfMessage,
    Request,
    Response,
    ServerConnection,
    date_header,
)

# Rebinding these is allowed, for the reason given.
CLOCK_ONLY = {"tether.http1._send._date_cache"}  # the Date value of the current second


def core_modules() -> list[ModuleType]:
    return [
        module
        for name, module in sorted(sys.modules.items())
        if (name == "tether" or name.startswith("tether.")) and module is not None
    ]


def snapshot() -> dict[str, object]:
    """Every global of every loaded core module: containers copied, others by identity."""
    state: dict[str, object] = {}
    for module in core_modules():
        for name, value in vars(module).items():
            key = f"{module.__name__}.{name}"
            if key in CLOCK_ONLY:
                continue
            if isinstance(value, (dict, set, list, bytearray)):
                state[key] = (type(value), value.copy())
            else:
                state[key] = ("id", id(value))
    return state


def changes(before: dict[str, object], after: dict[str, object]) -> list[str]:
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


def serve_one(wire: bytes, response_headers: list[tuple[bytes, bytes]]) -> list[object]:
    """One connection: feed ``wire`` whole, answer each request, return the events."""
    conn = ServerConnection()
    conn.receive_data(wire)
    seen: list[object] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            return seen
        seen.append(event)
        if type(event) is EndOfMessage:
            conn.send(Response(200, response_headers))
            conn.send(Data(b"hello"))
            conn.send(EndOfMessage())
            if not conn.start_next_cycle():
                return seen


CLIENT_A = [
    b"GET /account HTTP/1.1\r\nHost: shop.example\r\nX-Api-Key: sk_live_secret\r\n"
    b"X-Auth-Token: t0ken\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Cookie: session=abc\r\nConnection: keep-alive, TE\r\nUser-Agent: client-a/1.0\r\n\r\n",
    b"POST /upload HTTP/1.1\r\nHost: [2001:db8::7]:8443\r\nTransfer-Encoding: gzip , chunked\r\n\r\n",
    b"POST /upload HTTP/1.1\r\nHost: upload.example\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"1f3\r\n" + b"a" * 0x1F3 + b"\r\n07\r\n" + b"b" * 7 + b"\r\n0\r\n\r\n",
    b"GET http://other.example:81/p HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, close\r\n\r\n",
    b"PUT /x HTTP/1.0\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc",
]


def test_client_a_leaves_nothing_client_b_can_observe() -> None:
    for wire in CLIENT_A:  # warm every path once, so first-use set-up is not counted
        with contextlib.suppress(ProtocolError):
            serve_one(wire, [(b"set-cookie", b"warm=1")])
    before = snapshot()
    for i, wire in enumerate(CLIENT_A):
        headers = [
            date_header(1_700_000_000.0 + i),
            (b"set-cookie", b"session=secret-%d; HttpOnly" % i),
            (b"x-request-id", b"req-%d" % i),
            (b"content-length", b"5"),
        ]
        with contextlib.suppress(ProtocolError):
            serve_one(wire.replace(b"secret", b"secret%d" % i), headers)
    assert changes(before, snapshot()) == []


def test_a_refused_huge_head_leaves_nothing_behind() -> None:
    lines = b"".join(b"X-F%d: v%d\r\n" % (i, i) for i in range(12_000))
    wire = b"GET / HTTP/1.1\r\nHost: a\r\n" + lines + b"\r\n"
    assert len(wire) > 96_000
    before = snapshot()
    with pytest.raises(HeadTooLarge):
        serve_one(wire, [])
    assert changes(before, snapshot()) == []


def test_the_check_sees_a_table_filled_from_client_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The snapshot notices a module-level table that grows (so the tests above can fail)."""
    table: dict[bytes, bytes] = {}
    monkeypatch.setattr(tether.http1, "_PROBE_TABLE", table, raising=False)
    before = snapshot()
    request = serve_one(CLIENT_A[0], [])[0]
    assert isinstance(request, Request)
    table.update(request.headers)
    assert "tether.http1._PROBE_TABLE" in changes(before, snapshot())


def test_the_modules_that_matter_are_scanned() -> None:
    names = {module.__name__ for module in core_modules()}
    assert {"tether.http1._receive", "tether.http1._send", "tether.http1._connection"} <= names
    assert tether.serving.__name__ in names and tether.conformance.__name__ in names


def test_a_multipart_form_leaves_nothing_behind() -> None:
    """Field names a client sends in a form stay with that body's parser (no process-wide cache)."""
    from tether.multipart import MultipartParser, PartStart

    def form(prefix: bytes) -> bytes:
        fields = [
            b'--XyZ\r\nContent-Disposition: form-data; name="%s-%d"\r\n\r\nvalue\r\n' % (prefix, i)
            for i in range(5)
        ]
        return b"".join(fields) + b"--XyZ--\r\n"

    MultipartParser(b"XyZ").feed(form(b"warm-up"))  # module-level lazies, if any
    body = form(b"secret-field")
    before = snapshot()
    parser = MultipartParser(b"XyZ")
    events = parser.feed(body) + parser.close()
    names = [event.name for event in events if isinstance(event, PartStart)]
    assert names == [f"secret-field-{i}" for i in range(5)]
    assert changes(before, snapshot()) == []
