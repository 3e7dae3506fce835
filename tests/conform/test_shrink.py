"""The traffic probes' reducer, on its own: the replay here is a rule over the bytes, so
what it keeps and what it drops can be stated exactly (the live servers are in
test_groups.py)."""

from __future__ import annotations

from tether.http1 import NEED_DATA, Data, EndOfMessage, Request, ServerConnection
from tether.strategies import GeneratedRequest
from tether_server.conform._shrink import Budget, Case, Failure, shrink, simpler
from tether_server.conform._streams import Planned, aimed

AUTHORITY = b"127.0.0.1:8000"


def request(method: bytes = b"GET", target: bytes = b"/a/b/c?x", **parts: object) -> Planned:
    fields: dict[str, object] = {
        "version": b"1.1",
        "headers": ((b"X-One", b"1"), (b"Host", b"example.com"), (b"X-Two", b"2")),
        "body": b"",
        "chunks": None,
        "trailers": (),
        "padding": ((b" ", b""), (b"\t", b" "), (b"", b""), (b"", b"")),
        "extensions": (),
    }
    fields.update(parts)
    return aimed(GeneratedRequest(method=method, target=target, **fields), AUTHORITY)  # type: ignore[arg-type]


def stream(items: list[Planned], pipelined: bool = True) -> Case:
    return Case(tuple(items), tuple(() for _ in items), pipelined)


def test_keeps_the_two_requests_that_fail_together_and_simplifies_them() -> None:
    # The "server" answers a DELETE out of order when a PATCH follows it in the same write.
    def replay(case: Case) -> Failure | None:
        methods = [item.request.method for item in case.items]
        if b"DELETE" in methods and b"PATCH" in methods[methods.index(b"DELETE") :]:
            return Failure("order", "the answers came back out of order")
        return Failure("other", "a different bug") if len(methods) == 1 else None

    items = [request(m) for m in (b"GET", b"DELETE", b"POST", b"PUT", b"PATCH", b"GET")]
    found = Failure("order", "the answers came back out of order")
    example = shrink(stream(items), found, replay)
    assert example.reproduced and example.complete and example.reduced_from == 6
    host = b"Host:127.0.0.1:8000\r\n"
    assert example.requests == (
        b"DELETE / HTTP/1.1\r\n" + host + b"\r\n",
        b"PATCH / HTTP/1.1\r\n" + host + b"\r\n",
    )
    assert "pipelined in one write" in example.lines()[0]


def test_a_cut_the_failure_needs_is_kept_and_the_others_dropped() -> None:
    def replay(case: Case) -> Failure | None:
        # Fails when some piece ends inside the request line.
        line = len(case.items[0].wire.split(b"\r\n", 1)[0])
        return Failure("refused", "400") if any(0 < c < line for c in case.cuts[0]) else None

    item = request(b"POST", body=b"x" * 40)
    case = Case((item,), ((3, 30, len(item.wire) - 5),), pipelined=False)
    example = shrink(case, Failure("refused", "400"), replay)
    assert example.splits == ((3,),)
    assert example.requests == (b"GET / HTTP/1.1\r\nHost:127.0.0.1:8000\r\n\r\n",)
    lines = example.lines()
    assert lines[0].startswith("1 request sent alone")
    assert (
        lines[2]
        == "  written in 2 pieces, cut at byte 3: b'GET' + b' / HTTP/1.1\\r\\nHost:127.0.0.1:8000\\r\\n\\r\\n'"
    )


def test_a_chunked_body_with_a_trailer_keeps_what_the_failure_needs() -> None:
    def replay(case: Case) -> Failure | None:
        wire = case.items[0].wire
        return Failure("refused", "400") if b"\r\n0\r\nT: v\r\n" in wire else None

    item = request(
        b"POST",
        body=b"y" * 30,
        chunks=(10, 20),
        extensions=(b";a", b' ; q="x y"'),
        trailers=((b"T", b"v"), (b"U", b"w")),
    )
    example = shrink(stream([item], False), Failure("refused", "400"), replay)
    assert example.requests == (
        b"POST / HTTP/1.1\r\nHost:127.0.0.1:8000\r\nTransfer-Encoding:chunked\r\n\r\n0\r\nT: v\r\n\r\n",
    )


def test_every_simpler_variant_is_a_valid_request() -> None:
    items = [
        request(
            b"POST",
            body=b"z" * 9,
            chunks=(4, 5),
            extensions=(b"", b" ; n = v"),
            trailers=((b"T", b"v"),),
        ),
        request(b"PUT", target=b"http://example.com/p/q?r", body=b"abc"),
        request(b"OPTIONS", version=b"1.0", headers=((b"X", b"y"),), padding=()),
    ]
    variants = [gen for item in items for gen in simpler(item.gen)]
    assert len(variants) > 20
    for gen in variants:
        conn = ServerConnection()
        conn.receive_data(gen.to_bytes())
        events = []
        while (event := conn.next_event()) is not NEED_DATA and not isinstance(event, EndOfMessage):
            events.append(event)
        assert isinstance(events[0], Request) and isinstance(event, EndOfMessage), gen
        assert b"".join(e.data for e in events if isinstance(e, Data)) == gen.body


def test_the_bound_stops_it_and_says_so() -> None:
    replays = []

    def replay(case: Case) -> Failure | None:
        replays.append(case)
        return Failure("unanswered", "no response")

    items = [request(b"GET", target=b"/%d" % i) for i in range(20)]
    example = shrink(stream(items), Failure("unanswered", "x"), replay, Budget(attempts=5))
    assert len(replays) == example.attempts == 5
    assert not example.complete and "stopped by its bound" in example.lines()[0]


def test_a_failure_that_does_not_come_back_is_reported_as_found() -> None:
    items = [request(b"GET"), request(b"PATCH")]
    example = shrink(stream(items), Failure("order", "out of order"), lambda case: None)
    assert not example.reproduced and example.attempts == 1
    assert example.requests == tuple(item.wire for item in items)
    assert example.failure == "out of order"
    assert "did not fail again" in example.lines()[0]
