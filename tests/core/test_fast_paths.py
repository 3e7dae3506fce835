"""The parser's shortcuts give the same answers as the long way round.

Nothing one connection reads may change what another accepts (there is no
table filled from client bytes; tests/core/test_no_shared_state.py checks
that). The whole-body chunked reader (with its patterns for runs of power-of-two chunks,
``_tables._RUNS``) must agree with the chunk-by-chunk reader on every body it
takes, and leave every other body to it. The one-comparison size check of a
small head (``Limits._small_head``) must refuse exactly what the four size
limits refuse.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.errors import (
    BadRequest,
    ContentTooLarge,
    HeaderLineTooLong,
    HeadTooLarge,
    InvalidFraming,
    LocalProtocolError,
    RemoteProtocolError,
    RequestLineTooLong,
    TooManyHeaders,
)
from tether.http1 import (
    NEED_DATA,
    Data,
    EndOfMessage,
    Request,
    Response,
    ServerConnection,
    _tables,
)
from tether.limits import Limits

HEAD = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"


def events(wire: bytes, limits: Limits | None = None) -> list[object]:
    conn = ServerConnection(limits)
    conn.receive_data(wire)
    out: list[object] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            return out
        out.append(event)
        if type(event) is EndOfMessage:
            return out


def body_of(wire: bytes, limits: Limits | None = None) -> bytes:
    out = events(wire, limits)
    assert type(out[-1]) is EndOfMessage
    return b"".join(e.data for e in out if type(e) is Data)


def byte_by_byte(wire: bytes) -> bytes:
    conn = ServerConnection()
    body = []
    for i in range(len(wire)):
        conn.receive_data(wire[i : i + 1])
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                break
            if type(event) is Data:
                body.append(event.data)
            if type(event) is EndOfMessage:
                return b"".join(body)
    raise AssertionError("no EndOfMessage")


# ---- the field lines -------------------------------------------------------------------------


def test_bare_cr_and_controls_in_values_fail_after_a_good_head() -> None:
    good = b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\r\n"
    events(good)
    for bad in (b"X-A: 1\r2", b"X-A: 1\x002", b"X-A: 1\x7f", b"X-A : 1", b" X-A: 1"):
        with pytest.raises(BadRequest):
            events(b"GET / HTTP/1.1\r\nHost: a\r\n" + bad + b"\r\n\r\n")


# ---- the whole-body chunked reader --------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"5\r\nhello\r\n0\r\n\r\n",
        b"3\r\na\r\n\r\n3\r\nb\r\n\r\n0\r\n\r\n",  # data holding CRLF
        b"3\r\n0\r\n\r\n0\r\n\r\n",  # data that looks like the last chunk
        b"5;ext=1\r\nhello\r\n0\r\n\r\n",  # an extension
        b"05\r\nhello\r\n00\r\n\r\n",  # leading zeros, last chunk spelled 00
        b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",  # a trailer
        b"2\r\nab\r\n2\r\ncd\r\n3\r\nefg\r\n0\r\n\r\n",  # a run of one size, then another
    ],
)
def test_whole_body_agrees_with_byte_by_byte(body: bytes) -> None:
    # Twice: the first read fills the size-line table, the second uses it.
    assert body_of(HEAD + body) == byte_by_byte(HEAD + body)
    assert body_of(HEAD + body) == byte_by_byte(HEAD + body)


def run_of(size: int, count: int, fill: bytes = b"r") -> bytes:
    return (b"%x\r\n%s\r\n" % (size, (fill * size)[:size])) * count


@pytest.mark.parametrize(
    "body",
    [
        run_of(4, 3) + b"0\r\n\r\n",  # one run, then the last chunk
        run_of(4, 8) + b"0\r\n\r\n",  # exactly one pattern's depth
        run_of(4, 9) + b"0\r\n\r\n",  # one more than the depth
        run_of(2, 17) + b"0\r\n\r\n",  # three matches
        run_of(4, 3) + run_of(3, 2) + b"0\r\n\r\n",  # a run, then a size with no pattern
        run_of(3, 2) + run_of(4, 3) + b"0\r\n\r\n",  # and the other way round
        run_of(4, 2) + run_of(8, 2) + run_of(4, 1) + b"0\r\n\r\n",  # runs of two sizes
        b"4\r\n4\r\nx\r\n4\r\nabcd\r\n0\r\n\r\n",  # data that looks like a size line
        b"8\r\n0\r\n\r\nabc\r\n0\r\n\r\n",  # data that looks like the last chunk
        run_of(4, 2) + b"0\r\nX-T: 1\r\n\r\n",  # a run, then a trailer
        run_of(4, 2) + b"0;e=1\r\n\r\n",  # a run, then a last chunk with an extension
        run_of(4, 2) + b"4;e=1\r\nabcd\r\n0\r\n\r\n",  # a run, then an extension
        b"04\r\nabcd\r\n4\r\nabcd\r\n0\r\n\r\n",  # a leading zero: not the run's line
        run_of(0x400, 3) + b"0\r\n\r\n",
    ],
)
def test_runs_of_power_of_two_chunks_agree(body: bytes) -> None:
    for _ in range(2):
        assert body_of(HEAD + body) == byte_by_byte(HEAD + body)


@pytest.mark.parametrize(
    "body",
    [
        b"4\r\nabcd\r\n4\r\nabcdXX4\r\nabcd\r\n0\r\n\r\n",  # inside a run
        run_of(4, 9)[:-2] + b"XX0\r\n\r\n",  # in the second match of a run
        run_of(4, 2)[:-2] + b"XX0\r\n\r\n",  # before the last chunk
        run_of(4, 2) + b"4\r\nabcd\n0\r\n\r\n",  # a bare LF
    ],
)
def test_bad_crlf_in_a_run_is_refused(body: bytes) -> None:
    for _ in range(2):
        with pytest.raises(InvalidFraming):
            events(HEAD + body)


def test_body_limit_holds_over_several_runs() -> None:
    body = run_of(4, 20) + b"0\r\n\r\n"
    assert body_of(HEAD + body, Limits(max_body_size=80)) == b"rrrr" * 20
    with pytest.raises(ContentTooLarge):
        events(HEAD + body, Limits(max_body_size=79))


@given(
    st.lists(
        st.tuples(st.sampled_from([1, 2, 3, 4, 8, 16]), st.integers(1, 20), st.binary(max_size=1)),
        min_size=1,
        max_size=5,
    )
)
def test_generated_runs_agree(runs: list[tuple[int, int, bytes]]) -> None:
    body = b"".join(run_of(size, count, fill or b"\r") for size, count, fill in runs)
    wire = HEAD + body + b"0\r\n\r\n"
    expected = b"".join((fill or b"\r") * size * count for size, count, fill in runs)
    assert body_of(wire) == expected == byte_by_byte(wire)


@given(
    st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=6),
    st.sampled_from([b"\r\n", b"", b"0\r\n\r\n"]),
)
def test_generated_bodies_agree(chunks: list[bytes], noise: bytes) -> None:
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    wire = HEAD + body
    for _ in range(2):
        assert body_of(wire) == b"".join(chunks) == byte_by_byte(wire)
    # A pipelined request after the body is left in place.
    conn = ServerConnection()
    conn.receive_data(wire + b"GET / HTTP/1.1\r\nHost: b\r\n\r\n")
    assert isinstance(conn.next_event(), Request)
    assert type(conn.next_event()) is Data
    assert type(conn.next_event()) is EndOfMessage
    assert conn.buffered_bytes == len(b"GET / HTTP/1.1\r\nHost: b\r\n\r\n")


@pytest.mark.parametrize(
    "body",
    [
        b"5\r\nhelloXX0\r\n\r\n",
        b"2\r\nab\r\n2\r\ncdXX2\r\nef\r\n0\r\n\r\n",  # inside a run of one size
        b"2\r\nab\r\n2\r\ncd\r\n3\r\nefgXX0\r\n\r\n",  # after a run
    ],
)
def test_bad_crlf_after_data_is_refused(body: bytes) -> None:
    for _ in range(2):
        with pytest.raises(InvalidFraming):
            events(HEAD + body)


def test_body_limit_holds_on_the_whole_body_path() -> None:
    body = b"100\r\n" + b"y" * 256 + b"\r\n0\r\n\r\n"
    events(HEAD + body)
    with pytest.raises(ContentTooLarge):
        events(HEAD + body, Limits(max_body_size=255))


def test_digit_limit_holds_after_a_long_size_line_was_read() -> None:
    body = b"00000000000000005\r\nhello\r\n0\r\n\r\n"  # 17 digits
    assert body_of(HEAD + body, Limits(max_chunk_size_digits=20)) == b"hello"
    with pytest.raises(InvalidFraming):
        events(HEAD + body)


@pytest.mark.parametrize("cut", [1, 5, 11])
def test_a_tls_handshake_on_the_plain_port_is_refused_at_once(cut: int) -> None:
    hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
    conn = ServerConnection()
    conn.receive_data(hello[:cut])
    with pytest.raises(BadRequest, match="method"):
        conn.next_event()


def test_a_long_valid_method_arriving_byte_by_byte_still_waits() -> None:
    conn = ServerConnection()
    for byte in b"PROPFIND-" + b"X" * 40:
        conn.receive_data(bytes([byte]))
        assert conn.next_event() is NEED_DATA


# ---- the size check of a small head ---------------------------------------------------------


@pytest.mark.parametrize("padding", [0, 300])
@pytest.mark.parametrize(
    ("limit", "error"),
    [
        ("max_request_line", RequestLineTooLong),
        ("max_header_line", HeaderLineTooLong),
        ("max_head_size", HeadTooLarge),
        ("max_header_count", TooManyHeaders),
    ],
)
def test_each_head_limit_holds_at_its_edge(
    limit: str, error: type[Exception], padding: int
) -> None:
    # With and without a long field line, so that the head is on either side of the span
    # one comparison accepts.
    target = b"/" + b"t" * 40
    fields = [b"Host: a", b"X-Long: " + b"l" * padding, b"X-A: 1", b"X-B: 2"]
    wire = b"GET " + target + b" HTTP/1.1\r\n" + b"\r\n".join(fields) + b"\r\n\r\n"
    edge = {
        "max_request_line": len(target) + 13,
        "max_header_line": max(map(len, fields)),
        "max_head_size": len(wire),
        "max_header_count": len(fields),
    }[limit]
    assert isinstance(events(wire, Limits(**{limit: edge}))[0], Request)  # type: ignore[arg-type]
    with pytest.raises(error):
        events(wire, Limits(**{limit: edge - 1}))  # type: ignore[arg-type]


def test_run_patterns_exist_only_for_power_of_two_sizes() -> None:
    keys = set(_tables._RUNS)
    for size in (3, 5, 0x100, 0x101, 0x1000):
        body_of(HEAD + run_of(size, 3) + b"0\r\n\r\n")
    assert set(_tables._RUNS) == keys
    assert all(int(line, 16) & (int(line, 16) - 1) == 0 for line in keys)


def test_events_built_without_init_equal_the_constructed_ones() -> None:
    """The parser's Request and Data (built through the slot descriptors) are ordinary events."""
    wire = b"HEAD /x HTTP/1.0\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
    request, data, end = events(wire)
    assert request == Request(b"HEAD", b"/x", [(b"host", b"a"), (b"content-length", b"3")], b"1.0")
    assert type(request) is Request and type(data) is Data and data == Data(b"abc")
    assert end == EndOfMessage()
    assert hash(data) == hash(Data(b"abc"))
    with pytest.raises(AttributeError):  # still frozen
        data.data = b"x"  # type: ignore[misc]


@pytest.mark.parametrize("make", [ServerConnection, lambda: ServerConnection()._reader])
def test_a_new_connection_sets_every_attribute_of_its_classes(make: object) -> None:
    """ServerConnection and its reader set their bases' attributes in one ``__init__`` (one
    frame per accepted socket): none of the bases' slots may be left unset."""
    obj = make()  # type: ignore[operator]
    slots = {
        name
        for cls in type(obj).__mro__
        for name in getattr(cls, "__slots__", ())
        if name != "__weakref__"
    }
    assert len(slots) > 15
    unset = sorted(name for name in slots if not hasattr(obj, name))
    assert unset == []


# Each spelling: a common name (from the writer's fixed table), and one it must check itself.
@pytest.mark.parametrize("name", [b"Content-Type", b"X-Custom"])
@pytest.mark.parametrize(
    "bad",
    [
        (b"%s", b"a\r\nSet-Cookie: evil=1"),  # response splitting through a value
        (b"%s", b"a\nb"),
        (b"%s", b"a\x00b"),
        (b"%s\nX-Evil", b"1"),  # a LF inside a name
        (b"%s:", b"1"),
        (b"%s ", b"1"),
    ],
)
def test_response_fields_are_checked_whatever_the_name(
    name: bytes, bad: tuple[bytes, bytes]
) -> None:
    conn = ServerConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert isinstance(conn.next_event(), Request)
    fields = [(b"Date", b"x"), (bad[0] % name, bad[1]), (b"content-length", b"0")]
    with pytest.raises(LocalProtocolError):
        conn.send(Response(200, fields))
    # Nothing moved: a valid response may still be sent.
    head = conn.send(Response(200, [(b"Content-Type", b"text/plain"), (b"Content-Length", b"0")]))
    assert head.endswith(b"\r\nContent-Type: text/plain\r\ncontent-length: 0\r\n\r\n")


@pytest.mark.parametrize("field", [(b"content-length", "0"), (b"Content-Type", "text/plain")])
def test_a_str_value_is_refused_not_raised(field: tuple[bytes, str]) -> None:
    """A str value is a LocalProtocolError, not a TypeError, for a known name too."""
    conn = ServerConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    conn.next_event()
    with pytest.raises(LocalProtocolError):
        conn.send(Response(200, [field]))  # type: ignore[list-item]


def test_a_standard_phrase_given_writes_the_line_it_would_build() -> None:
    """A WSGI status comes with its phrase ("200 OK"): the line looked up for a standard code
    and phrase is the line built and checked for them, and any other phrase is still built."""
    from tether.http1 import _send

    for (code, phrase), line in _send._STATUS_LINES_WITH_REASON.items():
        assert line == b"HTTP/1.1 %d %s\r\n" % (code, phrase)
        head = _send.write_response(
            code if code >= 200 else 200, [], phrase, head_request=False, http10=False,
            keep_alive=True,
        )[0]  # fmt: skip
        assert head.startswith(b"HTTP/1.1 %d %s\r\n" % (code if code >= 200 else 200, phrase))
    head = _send.write_response(200, [], b"Fine", head_request=False, http10=False, keep_alive=True)
    assert head[0].startswith(b"HTTP/1.1 200 Fine\r\n")
    with pytest.raises(LocalProtocolError):
        _send.write_response(200, [], b"O\nK", head_request=False, http10=False, keep_alive=True)


# Pieces of field lines: names (framing look-alikes among them), separators and values with the
# bytes a smuggler would try (controls, a bare CR or LF, obs-text, whitespace at either end).
_NAME_PIECES = st.sampled_from(
    [b"Host", b"content-length", b"Content_Length", b"Transfer-Encoding", b"transfer.encoding",
     b"X-Id", b"a", b"", b" Host", b"Ho st", b"H\x00", b"\xff", b"X\r", b"TransferEncoding"]
)  # fmt: skip
_VALUE_PIECES = st.sampled_from(
    [b"", b" ", b"\t", b"v", b" v ", b"a b", b"\x80\xff", b"\x7f", b"\x00", b"\r", b"\n", b":",
     b": ", b": \n", b"\nX: ", b" :"]
)  # fmt: skip
_LINES = st.lists(
    st.builds(
        lambda name, sep, values: name + sep + b"".join(values),
        _NAME_PIECES,
        st.sampled_from([b":", b": ", b" :", b"", b":  ", b":\t", b"::", b": : "]),
        st.lists(_VALUE_PIECES, max_size=4),
    ),
    max_size=14,
)


def _outcome(parse: object, lines: list[bytes]) -> object:
    try:
        return parse(lines)  # type: ignore[operator]
    except InvalidFraming:
        return None  # refused: the connection answers 400 either way


@given(_LINES)
def test_the_block_reader_and_the_line_reader_agree(lines: list[bytes]) -> None:
    """The two readers of field lines (``_head``: a long block at once, by splitting it on
    ": " once its CRLFs are marked; line by line otherwise, and whenever the block reader
    declines) give the same fields for every block the block reader accepts, and it accepts
    none that the line reader refuses. The lines are a head's, split on CRLF: none holds one."""
    from tether.http1 import _head

    lines = [line for line in lines if b"\r\n" not in line]
    if not lines:
        return
    block = _outcome(_head._parse_block, b"\r\n".join(lines))
    few = _outcome(_head._parse_few_fields, lines)
    if block is not None:
        assert block == few
    assert _outcome(_head._parse_fields, lines) == few


def test_the_block_reader_takes_the_common_spelling() -> None:
    """What makes the block reader worth having: it reads the common ``name: value`` lines
    (here a browser's) itself; a line spelled otherwise makes it decline, and the line
    reader then reads the block."""
    from tether.http1 import _head

    lines = [b"Host: a", b"User-Agent: x/1.0 (X11)", b"Accept: */*", b"X-Id:  7 ",
             b"Cookie: a=b; c=d", b"Referer: https://a/b?c=d", b"Content-Length: 0"]  # fmt: skip
    fields = [
        (b"host", b"a"), (b"user-agent", b"x/1.0 (X11)"), (b"accept", b"*/*"), (b"x-id", b"7"),
        (b"cookie", b"a=b; c=d"), (b"referer", b"https://a/b?c=d"), (b"content-length", b"0"),
    ]  # fmt: skip
    assert _head._parse_block(b"\r\n".join(lines)) == fields
    for odd in (b"Warning: 1 a: b", b"Accept:*/*", b"Accept:\t*/*"):
        unusual = [*lines, odd]
        assert _head._parse_block(b"\r\n".join(unusual)) is None
        assert _head._parse_fields(unusual) == _head._parse_few_fields(unusual) is not None


@pytest.mark.parametrize(
    "second",
    [b"chunked", b"gzip", b"gzip, chunked", b"identity"],
)
def test_a_repeated_transfer_encoding_leaves_the_next_chunked_request_alone(
    second: bytes,
) -> None:
    """``Transfer-Encoding: chunked`` alone is read as one list shared by every request, and
    taken as valid by identity; a second Transfer-Encoding field must make a new list. Were
    it to extend the shared one, ``chunked`` then ``gzip`` would pass as chunked (chunked not
    last: RFC 9112 6.1 says 400), and every later request would share the damage."""
    from tether.http1 import _head

    refused = ServerConnection()
    refused.receive_data(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: " + second + b"\r\n\r\n"
    )
    with pytest.raises(RemoteProtocolError):  # chunked twice, or not last (RFC 9112 6.1)
        refused.next_event()
    conn = ServerConnection()
    conn.receive_data(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    assert isinstance(conn.next_event(), Request)
    assert conn.next_event() == Data(b"abc")
    assert conn.next_event() == EndOfMessage()
    assert _head._JUST_CHUNKED == [b"chunked"]
