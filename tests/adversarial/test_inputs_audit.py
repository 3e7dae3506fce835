"""An audit of the input-handling helpers as a hostile client sees them: forwarding fields,
form bodies, content coding, trace context, the event-stream parser and the access log.

Each test here failed before the fix it names. Work is measured by counting (regex steps in
a backtracking model of ``re``, bytes allocated under ``tracemalloc``), never by the clock;
what a server does with the input is checked against a real server process over a socket.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import tether.sse
import tether_server.forwarded
from tests.adversarial._servers import exchange, tether_serve, tether_threaded
from tests.regex_model import Backtracker
from tether.errors import RemoteProtocolError
from tether.multipart import (
    End,
    MalformedMultipart,
    MalformedPartHeaders,
    MultipartLimits,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    TooManyParts,
)
from tether.serving import TrustedProxies
from tether.sse import Event, EventStreamParser
from tether.urlencoded import End as UrlencodedEnd
from tether.urlencoded import (
    Field,
    TooManyFields,
    UrlencodedLimits,
    UrlencodedParser,
    parse_urlencoded,
)
from tether_server.forwarded import forwarded_origin
from tether_server.logline import LineHandler, write_info


class CountingPattern:
    """Stands in for a module's compiled pattern: each call adds the modelled steps of every
    match the engine attempts (one per start position for a scan) to ``counter``, then
    answers as the real pattern does."""

    def __init__(self, real: re.Pattern[Any], counter: list[int]) -> None:
        self.real = real
        self.model = Backtracker(real)
        self.counter = counter

    def _bytes(self, text: Any) -> bytes:
        return text.encode("latin-1") if isinstance(text, str) else bytes(text)

    def _scan(self, text: Any, pos: int = 0) -> None:
        data = self._bytes(text)
        while pos <= len(text):
            self.counter[0] += self.model.attempt(data, pos)
            found = self.real.match(text, pos)
            pos = found.end() if found is not None and found.end() > pos else pos + 1

    def match(self, text: Any, pos: int = 0) -> Any:
        self.counter[0] += self.model.attempt(self._bytes(text), pos)
        return self.real.match(text, pos)

    def fullmatch(self, text: Any, pos: int = 0) -> Any:
        self.counter[0] += self.model.attempt(self._bytes(text), pos, full=True)
        return self.real.fullmatch(text, pos)

    def search(self, text: Any, pos: int = 0) -> Any:
        self._scan(text, pos)
        return self.real.search(text, pos)

    def findall(self, text: Any, pos: int = 0) -> Any:
        self._scan(text, pos)
        return self.real.findall(text, pos)

    def finditer(self, text: Any, pos: int = 0) -> Any:
        self._scan(text, pos)
        return self.real.finditer(text, pos)

    def sub(self, repl: Any, text: Any) -> Any:
        self._scan(text)
        return self.real.sub(repl, text)


@contextmanager
def regex_steps(*modules: ModuleType) -> Iterator[list[int]]:
    """Count the modelled regex work of every compiled pattern at module level in ``modules``
    (``counter[0]``), whatever the patterns are called."""
    counter = [0]
    saved: list[tuple[ModuleType, str, Any]] = []
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))
    try:
        for module in modules:
            for name, value in list(vars(module).items()):
                if isinstance(value, re.Pattern):
                    saved.append((module, name, value))
                    setattr(module, name, CountingPattern(value, counter))
        yield counter
    finally:
        for module, name, value in saved:
            setattr(module, name, value)
        sys.setrecursionlimit(limit)


def test_the_step_model_sees_quadratic_findall() -> None:
    """The model itself: findall of a token that never meets its "=" is quadratic."""
    holder = ModuleType("holder")
    holder.pattern = re.compile(r"[a-z]+=")  # type: ignore[attr-defined]
    with regex_steps(holder) as steps:
        holder.pattern.findall("a" * 100)  # type: ignore[attr-defined]
        small = steps[0]
        steps[0] = 0
        holder.pattern.findall("a" * 200)  # type: ignore[attr-defined]
        large = steps[0]
    assert large > 3.5 * small, (small, large)


# ---- forwarding fields: a zone after "%" is not part of an address -----------------------------

#: An IPv6 address with a "zone" that ipaddress takes as it is: a C1 CSI (0x9b, as obs-text in
#: a field value) that clears a terminal, a quote and the fields of a forged access line.
ZONED = b'fe80::1%\x9b2J" 200 0 forged'


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (b"x-forwarded-for", ZONED),
        (b"x-forwarded-for", b"203.0.113.9, " + ZONED),
        (b"forwarded", b'for="[' + ZONED.replace(b'"', b"") + b']"'),
    ],
)
def test_a_zoned_ipv6_hop_is_not_a_client_address(name: bytes, value: bytes) -> None:
    """RFC 7239 section 6 writes a node's address as RFC 3986's IPv6address, which has no zone;
    ``ipaddress`` took any text after "%" as one, so the hop became the client address."""
    proxies = TrustedProxies("*", rfc7239=name == b"forwarded")
    client, _ = proxies.resolve([(name, value)], ("192.0.2.1", 4000), "http")
    assert client is not None
    assert "%" not in client[0]
    assert client[0] in ("192.0.2.1", "203.0.113.9")
    text = value.decode("latin-1")
    assert proxies.resolve_text(text, "", ("192.0.2.1", 4000), "http")[0] in (
        ("192.0.2.1", 4000),
        ("203.0.113.9", 0),
    )


def test_an_ordinary_ipv6_hop_is_still_a_client_address() -> None:
    proxies = TrustedProxies("*")
    for hop in ("2001:db8::7", "::ffff:192.0.2.7"):
        assert proxies.resolve_text(hop, "", ("192.0.2.1", 4000), "http")[0] == (hop, 0)
    rfc = TrustedProxies("*", rfc7239=True)
    value = b'for="[2001:db8::7]:4711"'
    assert rfc.resolve([(b"forwarded", value)], ("192.0.2.1", 1), "http")[0] == ("2001:db8::7", 0)


def test_non_breaking_space_around_a_hop_is_not_ows() -> None:
    """RFC 9110 5.6.1: OWS is SP and HTAB; 0xa0 (obs-text) is part of the item, so the item is
    not an address and the walk stops at it."""
    proxies = TrustedProxies("*")
    got = proxies.resolve([(b"x-forwarded-for", b"\xa0203.0.113.9")], ("192.0.2.1", 1), "http")
    assert got[0] == ("192.0.2.1", 1)


ECHO_CLIENT_ASGI = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = repr(scope["client"]).encode("ascii", "backslashreplace")
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
"""

ECHO_CLIENT_WSGI = """
def app(environ, start_response):
    body = repr(environ["REMOTE_ADDR"]).encode("ascii", "backslashreplace")
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""


@pytest.mark.parametrize("server_kind", ["asyncio", "threaded"])
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_forged_zone_reaches_neither_the_application_nor_the_log(
    server_kind: str, log_format: str, tmp_path: Path
) -> None:
    """Through a trusted peer (127.0.0.1, the default), ``X-Forwarded-For: fe80::1%<CSI>...``
    was the client address: the application saw it and the access line wrote the C1 control
    and the forged fields as they were."""
    options = ("--access-log", "--log-format", log_format, "--proxy-headers")
    if server_kind == "asyncio":
        context = tether_serve(tmp_path, *options, app=ECHO_CLIENT_ASGI)
    else:
        context = tether_threaded(tmp_path, *options, app=ECHO_CLIENT_WSGI)
    request = b"GET /zone HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Forwarded-For: "
    with context as server:
        response = exchange(server, request + ZONED + b"\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 200 "), response
    assert b"127.0.0.1" in response.partition(b"\r\n\r\n")[2]
    # The server has stopped: everything it logged is in the file.
    raw = server.log.read_bytes()
    assert b"GET /zone" in raw, raw
    assert b"\x9b" not in raw and b"forged" not in raw, raw
    if log_format == "json":
        lines = [json.loads(line) for line in raw.splitlines() if b"/zone" in line]
        assert len(lines) == 1, raw


# ---- forwarding fields: RFC 7239 host= in linear work ---------------------------------------------

#: Hostile ``Forwarded`` values, as a function of a size: what a client writes to the left of
#: the element the nearest proxy appends (or all of it, when the proxy passes the field on).
HOSTILE_FORWARDED: dict[str, Callable[[int], bytes]] = {
    "escaped quotes": lambda n: b"for=192.0.2.1, " + b'\\"' * n,
    "a token without '='": lambda n: b"for=192.0.2.1;host=a, " + b"a" * n,
    "a value without ';'": lambda n: b"host=" + b"a" * n + b" b",
    "quote runs": lambda n: b'for=192.0.2.1, "' * n,
    "empty pairs": lambda n: b";" * n + b"host=x y",
}


@pytest.mark.parametrize("appended", [b"", b", for=192.0.2.9"])
@pytest.mark.parametrize("shape", list(HOSTILE_FORWARDED))
def test_rfc7239_host_is_read_in_linear_work(shape: str, appended: bytes) -> None:
    """``forwarded_origin`` (tether-threaded's SERVER_NAME, HTTP_HOST) split the field with a
    findall() that rescanned from every unbalanced quote, and read pairs with one that
    rescanned every token without "=": quadratic, about 20 s of CPU for a 64 KiB field, from any
    client behind a trusted proxy that passes Forwarded on (nginx does by default)."""
    make = HOSTILE_FORWARDED[shape]
    work = []
    for n in (150, 300):
        with regex_steps(tether_server.forwarded) as steps:
            forwarded_origin([(b"forwarded", make(n) + appended)], True)
        work.append(steps[0])
    assert work[1] < 2.5 * work[0], work


def test_rfc7239_host_is_read_as_before_and_strictly() -> None:
    def host(value: bytes) -> str | None:
        return forwarded_origin([(b"forwarded", value)], True).host

    assert host(b"for=192.0.2.1;host=example.com") == "example.com"
    assert host(b'for=192.0.2.1;host="example.com:8080"') == "example.com:8080"
    assert host(b'host=evil, for="[2001:db8::1]";HOST="a.example"') == "a.example"
    # An unbalanced quote on the left does not swallow the element the proxy appended.
    assert host(b'host="evil, for=192.0.2.1;host=good.example') == "good.example"
    # RFC 7239 section 4: no whitespace inside an element, ":" is not a token character, and
    # a parameter occurs once per element.
    assert host(b"for=192.0.2.1;host=example.com:8080") is None
    assert host(b"for=192.0.2.1; host=example.com") is None
    assert host(b"host=a.example;host=b.example") is None


# ---- server-sent events: a long line in small pieces --------------------------------------------


def test_an_event_stream_line_in_small_pieces_is_searched_once() -> None:
    """The parser copied the incomplete line and searched it again from its start for every
    piece: a 200 kB line (a hostile or broken server) in 10-byte reads cost about 9 s."""
    work = []
    for pieces in (200, 400):
        parser = EventStreamParser()
        with regex_steps(tether.sse) as steps:
            for _ in range(pieces):
                assert parser.feed(b"data: xxxx") == []
        work.append(steps[0])
        assert parser.feed(b"\r") == []  # a CR at the end may begin a CRLF
        assert parser.feed(b"\n\n") == [Event("message", ("data: xxxx" * pieces)[6:], "")]
    assert work[1] < 2.5 * work[0], work


def test_an_event_stream_still_reads_every_line_end_at_any_split() -> None:
    stream = b"\xef\xbb\xbfdata: a\r\rdata: b\r\n\r\nevent: e\ndata: c\n\nid: 7\rdata: d\r\n\n"
    expected = [
        Event("message", "a", ""),
        Event("message", "b", ""),
        Event("e", "c", ""),
        Event("message", "d", "7"),
    ]
    for size in (1, 2, 3, 5, len(stream)):
        parser = EventStreamParser()
        got = []
        for i in range(0, len(stream), size):
            got += parser.feed(stream[i : i + size])
        assert got == expected, size


# ---- form bodies: memory bounded by the limits, not by the count of separators ----------------


def _peak(call: Callable[[], object]) -> int:
    """Bytes allocated by ``call`` at its peak, above what was held before (``tracemalloc``)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        with contextlib.suppress(RemoteProtocolError):
            call()
        return max(0, tracemalloc.get_traced_memory()[1] - before)
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("filler", [b"ab&", b"&", b"a&&&"])
def test_an_urlencoded_body_of_separators_is_not_a_list_of_them(filler: bytes) -> None:
    """``feed`` split the whole piece at every "&" before counting fields: a 3 MB body of
    ``ab&`` held 43 MB (an object and a list entry per pair) before the 413, a 16 MiB body
    (the default max_total_size) about 230 MB."""
    body = filler * (3_000_000 // len(filler)) + b"last=1"
    assert _peak(lambda: parse_urlencoded(body)) < len(body) // 2
    with pytest.raises(TooManyFields) if filler != b"&" else contextlib.nullcontext():
        assert parse_urlencoded(body) == [("last", "1")]


def test_urlencoded_fields_around_runs_of_separators_are_read_as_before() -> None:
    body = b"&" * 3000 + b"a=1&&b=2" + b"&" * 3000 + b"c"
    assert parse_urlencoded(body) == [("a", "1"), ("b", "2"), ("c", "")]
    parser = UrlencodedParser()
    events = parser.feed(b"x=1" + b"&" * 500 + b"y=%41&&&z") + parser.feed(b"z&") + parser.close()
    assert events == [Field("x", "1"), Field("y", "A"), Field("zz", ""), UrlencodedEnd()]
    with pytest.raises(TooManyFields):
        parse_urlencoded(b"a&" * 3 + b"&" * 100, UrlencodedLimits(max_fields=2))


MULTIPART_HEAD = b"--B\r\nContent-Disposition: form-data; name=a\r\n\r\nv"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        # A long epilogue made of delimiters: all of it is ignored.
        (MULTIPART_HEAD + b"\r\n--B--\r\n" + b"\r\n--Bxy" * 500_000, None),
        # A preamble's worth of delimiters, the first of them followed by garbage.
        (b"\r\n--Bxy" * 500_000, MalformedMultipart),
    ],
)
def test_a_multipart_piece_of_many_delimiters_is_not_a_list_of_them(
    body: bytes, error: type[Exception] | None
) -> None:
    """``feed`` cut the piece at every delimiter before counting parts: a 3.5 MB epilogue of
    delimiters held 25 MB (an object and a list entry per delimiter); 100 MB fed at once would
    hold about 700 MB. Now at most ``max_parts + 2`` cuts are made."""

    def parse() -> list[object]:
        parser = MultipartParser(b"B")
        return [*parser.feed(body), *parser.close()]

    assert _peak(parse) < 3 * len(body)
    if error is None:
        assert [type(event) for event in parse()] == [PartStart, PartData, PartEnd, End]
    else:
        with pytest.raises(error):
            parse()


def test_multipart_parts_up_to_the_limit_are_all_read_in_one_piece() -> None:
    part = b'\r\n--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nx'
    for count, fits in ((3, True), (4, False)):
        body = b"--B" + part[5:] + part * (count - 1) + b"\r\n--B--\r\n" + b"\r\n--B" * 10
        parser = MultipartParser(b"B", MultipartLimits(max_parts=3))
        if fits:
            events = parser.feed(body) + parser.close()
            assert sum(isinstance(e, PartStart) for e in events) == 3
            assert isinstance(events[-1], End)
        else:
            with pytest.raises(TooManyParts):
                parser.feed(body)


# ---- multipart: filename* decodes to no control character ---------------------------------------


def _first_part(disposition: bytes) -> PartStart:
    body = b"--B\r\nContent-Disposition: " + disposition + b"\r\n\r\nx\r\n--B--\r\n"
    event = MultipartParser(b"B").feed(body)[0]
    assert isinstance(event, PartStart)
    return event


@pytest.mark.parametrize("encoded", [b"a%0Ab", b"a%1B%5B2J", b"a%00.txt", b"%C2%9B", b"a%0D"])
def test_an_extended_filename_with_a_control_is_refused(encoded: bytes) -> None:
    """``filename*=UTF-8''a%0Ab`` came back as a file name holding a line break (or an ESC
    sequence, a NUL, a C1 CSI) that the quoted ``filename="..."`` form cannot carry: an
    application that logs or saves under it got the control byte."""
    with pytest.raises(MalformedPartHeaders) as info:
        _first_part(b"form-data; name=f; filename*=UTF-8''" + encoded)
    assert info.value.status_hint == 400


def test_an_extended_filename_is_still_decoded() -> None:
    start = _first_part(b"form-data; name=f; filename=x; filename*=UTF-8''na%C3%AFve%20f.txt")
    assert start.filename == "naïve f.txt"
    assert _first_part(b"form-data; name=f; filename*=iso-8859-1'en'%E9").filename == "é"


# ---- RFC 7239 elements are read strictly by TrustedProxies too ------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        # A parameter twice: which "for" was meant? (RFC 7239 4: MUST NOT occur more than once)
        b"for=192.0.2.1;for=10.0.0.1, for=10.0.0.2",
        # 0xa0 (obs-text) is not whitespace in a field value.
        b"for=192.0.2.1\xa0;proto=https, for=10.0.0.2",
    ],
)
def test_a_malformed_forwarded_element_ends_the_walk(value: bytes) -> None:
    """Such an element was read (the last "for" winning, "\\s" taking 0xa0 as space); it now
    ends the walk like any element that does not parse, so the proxy next to it is the client."""
    proxies = TrustedProxies("10.0.0.0/8", rfc7239=True)
    assert proxies.resolve([(b"forwarded", value)], ("10.0.0.3", 1), "http") == (
        ("10.0.0.2", 0),
        "http",
    )


def test_spaces_around_forwarded_pairs_are_still_read() -> None:
    proxies = TrustedProxies("10.0.0.0/8", rfc7239=True)
    value = b"for=192.0.2.1 ;\tproto=https, for=10.0.0.2"
    assert proxies.resolve([(b"forwarded", value)], ("10.0.0.3", 1), "http") == (
        ("192.0.2.1", 0),
        "https",
    )


# ---- the log handler writes no control a terminal acts on -------------------------------------------

RAISING_ASGI = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    name = dict(scope["headers"]).get(b"x-name", b"").decode("utf-8")
    raise ValueError(f"bad name {name}")
"""


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_client_text_in_an_application_error_reaches_the_log_escaped(
    log_format: str, tmp_path: Path
) -> None:
    """An application's exception message holding a client's text (a field value with U+009B,
    CSI, and a line break) was written as it was: the text handler wrote the C1 control, and
    ``--log-format json`` too (``ensure_ascii=False`` escapes C0 only)."""
    with tether_serve(tmp_path, "--log-format", log_format, app=RAISING_ASGI) as server:
        request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Name: \xc2\x9b2J\r\n\r\n"
        assert exchange(server, request).startswith(b"HTTP/1.1 500 ")
    raw = server.log.read_bytes()
    assert b"bad name" in raw, raw
    assert b"\x9b" not in raw, raw
    if log_format == "json":
        for line in raw.splitlines():
            if b"bad name" in line:
                assert "bad name \x9b2J" in json.loads(line)["exception"]


def test_the_log_handler_escapes_controls_in_messages_and_tracebacks() -> None:
    for json_lines in (False, True):
        stream = io.StringIO()
        logger = logging.getLogger(f"tests.inputs_audit.{json_lines}")
        logger.handlers[:] = [LineHandler(stream, json=json_lines)]
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.info("a\x9b2J\x1b[1m\nINFO: forged\u2028é\tb")
        assert write_info(logger, "c\x9bd\ne")
        try:
            raise ValueError("bad \x9b")
        except ValueError:
            logger.exception("boom")
        text = stream.getvalue()
        assert not any(ch in text for ch in "\x9b\x1b\u2028"), text
        assert "é" in text
        if json_lines:
            records = [json.loads(line) for line in text.splitlines()]
            assert records[0]["message"] == "a\x9b2J\x1b[1m\nINFO: forged\u2028é\tb"
            assert records[1]["message"] == "c\x9bd\ne"
        else:
            assert text.count("\n") == len(text.splitlines())
            assert "INFO: forged" not in text.splitlines()[1]
            assert text.splitlines()[1] == "INFO: c\\x9bd\\x0ae"
            assert "Traceback (most recent call last):\n" in text


ECHO_HOST_WSGI = """
def app(environ, start_response):
    body = repr((environ["REMOTE_ADDR"], environ["SERVER_NAME"], environ["HTTP_HOST"])).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""


def test_the_threaded_server_reads_the_proxys_forwarded_element_strictly(tmp_path: Path) -> None:
    """tether-threaded with ``--forwarded-style rfc7239``: a client's hostile Forwarded fields
    (unbalanced and escaped quotes, a token without "=", 7 fields of 8 kB: quadratic before)
    do not hide the element the proxy appended, and a host with an unquoted port, which RFC
    7239 4 does not allow (":" is not a token character), is not believed."""
    hostile = [b'\\"' * 4000, b"a" * 8000, b'host="evil' + b"x" * 7990] * 2
    options = ("--proxy-headers", "--forwarded-style", "rfc7239")
    cases = [
        (b'for=192.0.2.7;host="good.example:8080"', b"('192.0.2.7', 'good.example', "),
        # Not an element at all: neither its client nor its host is taken.
        (b"for=192.0.2.7;host=good.example:8080", b"('127.0.0.1', '127.0.0.1', "),
    ]
    with tether_threaded(tmp_path, *options, app=ECHO_HOST_WSGI) as server:
        for element, expected in cases:
            fields = b"".join(b"Forwarded: " + value + b"\r\n" for value in hostile)
            request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + fields
            response = exchange(server, request + b"Forwarded: " + element + b"\r\n\r\n")
            assert response.startswith(b"HTTP/1.1 200 "), response[:200]
            assert response.partition(b"\r\n\r\n")[2].startswith(expected), response


@pytest.mark.parametrize(
    "disposition",
    [
        b'form-data; name="a\xc2\x9bb"',  # the hot path for text fields
        b'form-data; name="f"; filename="x\xc2\x9b[2J.txt"',  # the browser-shaped file head
        b'form-data; name=f; filename="x\xc2\x85.txt"',  # the general path
    ],
)
def test_a_name_or_filename_with_a_c1_control_is_refused(disposition: bytes) -> None:
    """The quoted forms took C1 controls (U+009B CSI, U+0085 NEL) as obs-text and handed them
    to the application in names and file names, which filename* may no longer decode to."""
    for count in (1, 2):  # a second part goes through the per-parser head table
        part = b"--B\r\nContent-Disposition: " + disposition + b"\r\n\r\nx\r\n"
        with pytest.raises(MalformedPartHeaders) as info:
            MultipartParser(b"B").feed(part * count + b"--B--\r\n")
        assert info.value.status_hint == 400


def test_names_with_other_non_ascii_characters_are_still_read() -> None:
    start = _first_part('form-data; name="naïve\u202fname"; filename="Ä\xa0b.png"'.encode())
    assert (start.name, start.filename) == ("naïve\u202fname", "Ä\xa0b.png")
