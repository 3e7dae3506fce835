"""tether.serving_wsgi: the PEP 3333 rules a WSGI server applies, driven without sockets."""

from __future__ import annotations

import io
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.errors import BadRequest, LocalProtocolError
from tether.http1 import Request, ServerConnection
from tether.serving_cycle import CyclePhase, ResponseCycle
from tether.serving_wsgi import (
    NO_BODY,
    FileWrapper,
    close_result,
    encode_header,
    gathered_body,
    parse_status,
    request_environ,
    server_environ,
    start_response,
    traceback_response,
)


def _request(head: bytes) -> tuple[ServerConnection, Request]:
    conn = ServerConnection(now=0.0)
    conn.receive_data(head, 0.0)
    event = conn.next_event(0.0)
    assert isinstance(event, Request)
    return conn, event


def _environ(head: bytes, root_path: str = "") -> dict[str, object]:
    base = server_environ("example", "8080", root_path, tls=False, multiprocess=False)
    return request_environ(base, _request(head)[1])


class TestServerEnviron:
    def test_keys_every_request_shares(self) -> None:
        base = server_environ("::1", "443", "/app/", tls=True, multiprocess=True)
        assert base["SERVER_NAME"] == "::1" and base["SERVER_PORT"] == "443"
        assert base["SCRIPT_NAME"] == "/app"
        assert base["wsgi.url_scheme"] == "https"
        assert base["wsgi.version"] == (1, 0) and base["wsgi.multiprocess"] is True
        assert base["wsgi.errors"] is sys.stderr
        assert base["wsgi.file_wrapper"] is FileWrapper and base["wsgi.input"] is NO_BODY


class TestRequestEnviron:
    def test_cgi_variables(self) -> None:
        environ = _environ(b"POST /a%20b?x=1 HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
        assert environ["REQUEST_METHOD"] == "POST"
        assert environ["PATH_INFO"] == "/a b" and environ["QUERY_STRING"] == "x=1"
        assert environ["REQUEST_URI"] == "/a%20b?x=1"
        assert environ["SERVER_PROTOCOL"] == "HTTP/1.0"
        assert environ["CONTENT_LENGTH"] == "0" and "HTTP_CONTENT_LENGTH" not in environ

    def test_root_path_is_taken_off_path_info(self) -> None:
        head = b"GET /app/x HTTP/1.1\r\nHost: a\r\n\r\n"
        assert _environ(head, "/app")["PATH_INFO"] == "/x"
        assert _environ(b"GET /app HTTP/1.1\r\nHost: a\r\n\r\n", "/app")["PATH_INFO"] == ""
        # A path that only starts with the same letters is not under the root path.
        assert _environ(b"GET /apple HTTP/1.1\r\nHost: a\r\n\r\n", "/app")["PATH_INFO"] == "/apple"

    def test_repeated_fields_are_joined_cookies_with_semicolons(self) -> None:
        environ = _environ(
            b"GET / HTTP/1.1\r\nHost: a\r\nX-Tag: 1\r\nX-Tag: 2\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n"
        )
        assert environ["HTTP_X_TAG"] == "1, 2"
        assert environ["HTTP_COOKIE"] == "a=1; b=2"

    def test_field_names_with_underscores_are_dropped(self) -> None:
        """``X_Forwarded_For`` would pass for ``X-Forwarded-For`` (both map to one CGI key)."""
        environ = _environ(b"GET / HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 1.2.3.4\r\n\r\n")
        assert "HTTP_X_FORWARDED_FOR" not in environ

    def test_bytes_are_latin1_text(self) -> None:
        environ = _environ(b"GET /caf%C3%A9 HTTP/1.1\r\nHost: a\r\nX-Name: \xe9\r\n\r\n")
        assert environ["PATH_INFO"] == "/caf\xc3\xa9" and environ["HTTP_X_NAME"] == "\xe9"

    def test_a_stray_percent_is_a_bad_request(self) -> None:
        with pytest.raises(BadRequest):
            _environ(b"GET /100%x HTTP/1.1\r\nHost: a\r\n\r\n")

    def test_the_base_is_copied_not_changed(self) -> None:
        base = server_environ("h", "80", "", tls=False, multiprocess=False)
        before = dict(base)
        request_environ(base, _request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")[1])
        assert base == before


def _reference_fields(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """PEP 3333's header keys, one field at a time: the rule request_environ must keep."""
    out: dict[str, str] = {}
    for name, value in headers:
        if b"_" in name:
            continue
        key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        key = {"HTTP_CONTENT_TYPE": "CONTENT_TYPE", "HTTP_CONTENT_LENGTH": "CONTENT_LENGTH"}.get(
            key, key
        )
        text = value.decode("latin-1")
        out[key] = (
            f"{out[key]}{'; ' if key == 'HTTP_COOKIE' else ', '}{text}" if key in out else text
        )
    return out


_NAMES = st.sampled_from(
    [b"host", b"cookie", b"x-tag", b"X-Tag", b"content-type", b"Content-Length", b"x_tag",
     b"traceparent", b"a\nb", b"\xdf-x", b"x-request-id", b"server_name"]
)  # fmt: skip
_VALUES = st.binary(max_size=6) | st.sampled_from([b"a\nb", b"", b"\n"])


class TestHeaderKeys:
    @given(st.lists(st.tuples(_NAMES, _VALUES), max_size=8))
    def test_every_head_gets_the_keys_of_the_per_field_rule(
        self, headers: list[tuple[bytes, bytes]]
    ) -> None:
        """The whole-head fast path (no repeated name, no "_", no LF) and the per-field loop
        give the same keys for any head, hand-made ones with an LF in a name or value included."""
        base = server_environ("h", "80", "", tls=False, multiprocess=False)
        environ = request_environ(base, Request(b"GET", b"/", headers))
        got = {k: v for k, v in environ.items() if k.startswith(("HTTP_", "CONTENT_"))}
        assert got == _reference_fields(headers)

    def test_a_key_the_base_has_is_joined_not_replaced(self) -> None:
        base = {**server_environ("h", "80", "", tls=False, multiprocess=False), "HTTP_X": "0"}
        environ = request_environ(base, Request(b"GET", b"/", [(b"x", b"1")]))
        assert environ["HTTP_X"] == "0, 1"


class TestStatusAndHeaders:
    @pytest.mark.parametrize(
        ("status", "parsed"),
        [("200 OK", (200, b"OK")), ("299 Mine", (299, b"Mine")), ("404 ", (404, b""))],
    )
    def test_status(self, status: str, parsed: tuple[int, bytes]) -> None:
        assert parse_status(status) == parsed

    @pytest.mark.parametrize("status", ["200", "20 OK", "abc OK", "200-OK"])
    def test_bad_status(self, status: str) -> None:
        with pytest.raises(ValueError, match="200 OK"):
            parse_status(status)

    def test_status_must_be_text(self) -> None:
        with pytest.raises(TypeError):
            parse_status(b"200 OK")  # type: ignore[arg-type]

    def test_hop_by_hop_fields_are_refused_but_connection_close(self) -> None:
        assert encode_header(("Connection", "close")) == (b"Connection", b"close")
        for name in ("Transfer-Encoding", "Upgrade", "Keep-Alive", "Connection"):
            with pytest.raises(ValueError, match="hop-by-hop"):
                encode_header((name, "x"))

    def test_content_length_is_spelled_once(self) -> None:
        assert (
            encode_header(("Content-Length", "3"))[0] is encode_header(("content-length", "4"))[0]
        )

    def test_header_pairs_must_be_text(self) -> None:
        with pytest.raises(TypeError):
            encode_header((b"x", "y"))  # type: ignore[arg-type]


class TestStartResponse:
    def _cycle(self) -> ResponseCycle:
        conn, request = _request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        return ResponseCycle(conn, request, "client", date=None, server=None)

    def test_starts_the_cycle(self) -> None:
        cycle = self._cycle()
        start_response(cycle, "201 Created", [("Content-Length", "2")])
        assert cycle.phase is CyclePhase.HEAD and cycle.status == 201
        assert cycle.body(b"ok").startswith(b"HTTP/1.1 201 Created\r\n")

    def test_a_second_call_needs_exc_info(self) -> None:
        cycle = self._cycle()
        start_response(cycle, "200 OK", [])
        with pytest.raises(AssertionError):
            start_response(cycle, "500 Internal Server Error", [])

    def test_exc_info_replaces_a_head_not_sent(self) -> None:
        cycle = self._cycle()
        start_response(cycle, "200 OK", [])
        try:
            raise RuntimeError("boom")
        except RuntimeError as exc:
            start_response(cycle, "500 Internal Server Error", [], (RuntimeError, exc, None))
        assert cycle.status == 500

    def test_exc_info_reraises_once_committed(self) -> None:
        cycle = self._cycle()
        start_response(cycle, "200 OK", [])
        cycle.body(b"x", True)
        error = RuntimeError("late")
        with pytest.raises(RuntimeError, match="late"):
            start_response(cycle, "500 Internal Server Error", [], (RuntimeError, error, None))

    def test_a_bad_field_leaves_the_cycle_waiting(self) -> None:
        cycle = self._cycle()
        with pytest.raises(ValueError, match="hop-by-hop"):
            start_response(cycle, "200 OK", [("Upgrade", "x")])
        assert cycle.phase is CyclePhase.WAITING
        with pytest.raises(LocalProtocolError):
            cycle.body(b"x")


class TestBodiesAndResults:
    def test_file_wrapper_reads_in_blocks_and_closes(self) -> None:
        file = io.BytesIO(b"abcdefg")
        wrapper = FileWrapper(file, blksize=3)
        assert list(wrapper) == [b"abc", b"def", b"g"]
        wrapper.close()
        assert file.closed

    def test_a_gathered_body_has_its_length_and_no_transfer_coding(self) -> None:
        environ = _environ(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        assert "CONTENT_LENGTH" not in environ and environ["wsgi.input"] is NO_BODY
        gathered_body(environ, io.BytesIO(b"abc"), 3)
        assert environ["CONTENT_LENGTH"] == "3" and "HTTP_TRANSFER_ENCODING" not in environ
        assert environ["wsgi.input"].read() == b"abc"

    def test_no_body_is_always_at_its_end(self) -> None:
        assert NO_BODY.read() == b"" and NO_BODY.read(10) == b""
        assert NO_BODY.readline() == b"" and NO_BODY.readlines() == [] and list(NO_BODY) == []

    def test_close_result_calls_close_if_any(self) -> None:
        closed: list[bool] = []

        class Result:
            def close(self) -> None:
                closed.append(True)

        close_result(Result())
        close_result([b"no close"])
        assert closed == [True]

    def test_traceback_response_carries_the_traceback(self) -> None:
        try:
            raise ValueError("the detail")
        except ValueError as exc:
            response, body = traceback_response(exc)
        assert response.status_code == 500
        assert b"ValueError: the detail" in body
        fields = dict(response.headers)
        assert fields[b"content-length"] == str(len(body)).encode()
        assert fields[b"connection"] == b"close"
