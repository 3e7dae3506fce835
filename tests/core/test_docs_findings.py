"""Core bugs the docs author hit while writing the guide, each as a library user hits it."""

from __future__ import annotations

import pytest
from hypothesis import given

from tether.errors import ContentTooLarge, TooManyHeaders
from tether.http1 import (
    NEED_DATA,
    Data,
    EndOfMessage,
    Request,
    Response,
    ServerConnection,
    Timer,
    reason_phrase,
)
from tether.limits import Limits
from tether.strategies import GeneratedRequest, requests

_GET = b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n"


def _answer(conn: ServerConnection, now: float) -> None:
    while not isinstance(conn.next_event(now=now), EndOfMessage):
        pass
    conn.send(Response(200, [(b"content-length", b"2")]))
    conn.send(Data(b"ok"))
    conn.send(EndOfMessage())


class TestPipelinedHeadBehindASlowReader:
    """A pipelined head already buffered whole is not a slow head: no 408 for it."""

    def test_a_whole_buffered_head_gets_no_408_while_the_server_is_still_writing(self) -> None:
        limits = Limits(head_timeout=10.0)
        conn = ServerConnection(limits, now=0.0)
        # The client pipelines two requests and then reads nothing.
        conn.receive_data(_GET % 1 + _GET % 2, now=0.0)
        _answer(conn, now=0.0)
        assert conn.start_next_cycle(now=1.0)
        # The server is blocked writing the first response (the client does not read), so it
        # does not call next_event; its timer fires at whatever the core said.
        assert conn.next_deadline() is None
        assert conn.handle_timeout(1.0 + 60.0) is None
        # Once the write goes through, the second request is there, whole.
        request = conn.next_event(now=70.0)
        assert isinstance(request, Request) and request.target == b"/2"

    def test_a_partial_pipelined_head_still_times_out(self) -> None:
        limits = Limits(head_timeout=10.0)
        conn = ServerConnection(limits, now=0.0)
        conn.receive_data(_GET % 1 + b"GET /2 HTTP/1.1\r\nHo", now=0.0)
        _answer(conn, now=0.0)
        assert conn.start_next_cycle(now=1.0)
        assert conn.next_deadline() == (11.0, Timer.HEAD)
        assert conn.next_event(now=1.0) is NEED_DATA
        assert conn.next_deadline() == (11.0, Timer.HEAD)
        out = conn.handle_timeout(11.0)
        assert out is not None and out.startswith(b"HTTP/1.1 408 ")

    def test_a_head_completed_by_a_receive_has_no_deadline_before_next_event(self) -> None:
        conn = ServerConnection(Limits(head_timeout=10.0), now=0.0)
        conn.receive_data(b"GET / HTTP/1.1\r\n", now=0.0)
        assert conn.next_event(now=0.0) is NEED_DATA
        conn.receive_data(b"Host: a\r\n\r\n", now=5.0)
        assert conn.next_deadline() is None
        assert isinstance(conn.next_event(now=50.0), Request)


class TestHeaderCountWhileReading:
    """Limits.max_header_count is checked while the head arrives, as the README says."""

    def _stream(self, conn: ServerConnection, fields: int, *, piece: int) -> None:
        wire = b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: 1\r\n" * fields
        for i in range(0, len(wire), piece):
            conn.receive_data(wire[i : i + piece])
            assert conn.next_event() is NEED_DATA

    def test_too_many_fields_are_refused_before_the_head_ends(self) -> None:
        for piece in (1, 7, 4096):
            conn = ServerConnection(Limits(max_header_count=10))
            with pytest.raises(TooManyHeaders) as caught:
                self._stream(conn, 20, piece=piece)
            assert caught.value.status_hint == 431
            # Refused in the piece that ended the 11th field line, not at the end of the head.
            eleven = len(b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: 1\r\n" * 10)
            assert conn.buffered_bytes < eleven + piece

    def test_the_limit_itself_is_allowed(self) -> None:
        conn = ServerConnection(Limits(max_header_count=10))
        self._stream(conn, 9, piece=3)
        conn.receive_data(b"\r\n")
        assert isinstance(conn.next_event(), Request)

    def test_pipelined_heads_are_counted_each_on_its_own(self) -> None:
        conn = ServerConnection(Limits(max_header_count=3))
        first = b"POST / HTTP/1.1\r\nHost: a\r\nX: 1\r\nContent-Length: 1\r\n\r\n"
        # The body arrives with the next head's first field lines; the rest comes later.
        conn.receive_data(first[:-1])
        assert conn.next_event() is NEED_DATA
        conn.receive_data(first[-1:] + b"x" + b"GET / HTTP/1.1\r\nHost: a\r\nY: 2\r\n")
        assert isinstance(conn.next_event(), Request)
        assert isinstance(conn.next_event(), Data)
        assert isinstance(conn.next_event(), EndOfMessage)
        conn.send(Response(204))
        conn.send(EndOfMessage())
        assert conn.start_next_cycle()
        assert conn.next_event() is NEED_DATA
        conn.receive_data(b"Z: 3\r\n\r\n")
        assert isinstance(conn.next_event(), Request)


class TestRFC9110ReasonPhrases:
    """Status lines say what RFC 9110 calls each code, not the names of RFC 7231 or 2616."""

    @pytest.mark.parametrize(
        ("status", "phrase"),
        [
            (413, b"Content Too Large"),  # RFC 9110 15.5.14
            (414, b"URI Too Long"),  # 15.5.15
            (416, b"Range Not Satisfiable"),  # 15.5.17
            (422, b"Unprocessable Content"),  # 15.5.21
            (200, b"OK"),
            (431, b"Request Header Fields Too Large"),  # RFC 6585 5
        ],
    )
    def test_a_response_without_a_reason_gets_the_rfc_9110_name(
        self, status: int, phrase: bytes
    ) -> None:
        conn = ServerConnection()
        conn.receive_data(_GET % 1)
        assert isinstance(conn.next_event(), Request)
        head = conn.send(Response(status, [(b"content-length", b"0")]))
        assert head.startswith(b"HTTP/1.1 %d %s\r\n" % (status, phrase))
        assert reason_phrase(status) == phrase.decode()

    def test_an_oversized_body_is_refused_with_content_too_large(self) -> None:
        conn = ServerConnection(Limits(max_body_size=10))
        conn.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n")
        with pytest.raises(ContentTooLarge) as caught:
            conn.next_event()
        out = conn.error_response(caught.value)
        assert out.startswith(b"HTTP/1.1 413 Content Too Large\r\n")
        assert b"\r\n\r\n413 Content Too Large: " in out

    def test_an_unregistered_code_has_no_phrase(self) -> None:
        assert reason_phrase(299) == ""


class TestStrategiesAgreeWithTheCore:
    """``GeneratedRequest.expected_headers()`` is what ``ServerConnection`` reports."""

    @staticmethod
    def _request(
        target: bytes, version: bytes, headers: tuple[tuple[bytes, bytes], ...]
    ) -> GeneratedRequest:
        return GeneratedRequest(
            method=b"GET",
            target=target,
            version=version,
            headers=headers,
            body=b"",
            chunks=None,
            trailers=(),
            padding=(),
            extensions=(),
        )

    @pytest.mark.parametrize(
        ("target", "version", "headers"),
        [
            # The docstring's advice: replace Host for a server that checks it.
            (b"http://example.com/a?b", b"1.1", ((b"Host", b"other.example"), (b"X", b"1"))),
            # HTTP/1.0 needs no Host: the core adds the target's.
            (b"http://example.com:8080?q", b"1.0", ((b"X", b"1"),)),
            (b"/origin", b"1.1", ((b"Host", b"other.example"),)),
        ],
    )
    def test_the_documented_comparison_holds(
        self, target: bytes, version: bytes, headers: tuple[tuple[bytes, bytes], ...]
    ) -> None:
        request = self._request(target, version, headers)
        conn = ServerConnection()
        conn.receive_data(request.to_bytes())
        parsed = conn.next_event()
        assert isinstance(parsed, Request)
        assert parsed.headers == request.expected_headers()

    @given(requests())
    def test_any_generated_request(self, request: GeneratedRequest) -> None:
        conn = ServerConnection()
        conn.receive_data(request.to_bytes())
        parsed = conn.next_event()
        assert isinstance(parsed, Request)
        assert parsed.headers == request.expected_headers()
