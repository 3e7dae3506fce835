"""The access line written without a log record (``tether_server.logline``): the same bytes as
the logging call, and only when nothing else configured would have seen the record."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from tether.http1 import Request, ServerConnection
from tether.serving_cycle import ResponseCycle
from tether_server.logline import LineHandler, write_info
from tether_server.startup import configure_logging
from tether_server.tagging import Tagger, log_access


@pytest.fixture
def tether_logs() -> Iterator[io.StringIO]:
    """``configure_logging("info")``'s set-up, writing to a buffer; restored afterwards."""
    root = logging.getLogger("tether")
    saved = root.handlers[:], root.level, root.propagate
    configure_logging("info")
    (handler,) = root.handlers
    assert isinstance(handler, LineHandler)
    out = io.StringIO()
    handler.setStream(out)
    try:
        yield out
    finally:
        root.handlers[:], root.level, root.propagate = saved


def _alone() -> None:
    """Take pytest's capturing handlers off ``tether`` (it adds them as each test starts), so
    that the set-up is configure_logging's alone."""
    root = logging.getLogger("tether")
    root.handlers[:] = [h for h in root.handlers if type(h) is LineHandler]


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """Every LogRecord made while the test runs."""
    made: list[logging.LogRecord] = []
    factory = logging.getLogRecordFactory()

    def counting(*args: object, **kwargs: object) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        made.append(record)
        return record

    logging.setLogRecordFactory(counting)
    try:
        yield made
    finally:
        logging.setLogRecordFactory(factory)


def _cycle(target: bytes = b"/ok", tag: object = None) -> ResponseCycle:
    conn = ServerConnection()
    conn.receive_data(b"GET " + target + b" HTTP/1.1\r\nHost: a\r\nX-Request-Id: abc\r\n\r\n")
    request = conn.next_event()
    assert isinstance(request, Request)
    cycle = ResponseCycle(conn, request, "127.0.0.1:5555", date=None, server=None, tag=tag)
    cycle.start(200, [(b"content-length", b"2")])
    cycle.body(b"ok")
    return cycle


ACCESS = logging.getLogger("tether.access")
LINE = 'INFO: 127.0.0.1:5555 - "GET /ok HTTP/1.1" 200 2\n'


def test_the_default_set_up_writes_the_line_without_a_record(
    tether_logs: io.StringIO, records: list[logging.LogRecord]
) -> None:
    _alone()
    log_access(ACCESS, _cycle())
    assert tether_logs.getvalue() == LINE
    assert records == []


def test_the_line_is_the_logging_calls_own(tether_logs: io.StringIO) -> None:
    # The same line through the logging module (a filter that passes everything sends it there).
    _alone()
    handler = logging.getLogger("tether").handlers[0]
    log_access(ACCESS, _cycle(b"/a?b=c%20d"))
    tagger = Tagger(request_id_header="x-request-id")
    cycle = _cycle()
    cycle.tag = tagger.tag(cycle.request.headers)
    log_access(ACCESS, cycle)
    fast = tether_logs.getvalue()
    handler.addFilter(lambda record: True)
    tether_logs.seek(0)
    tether_logs.truncate()
    log_access(ACCESS, _cycle(b"/a?b=c%20d"))
    log_access(ACCESS, cycle)
    assert tether_logs.getvalue() == fast
    assert fast.splitlines()[1].endswith(" request_id=abc")


@pytest.mark.parametrize(
    "change",
    ["handler filter", "logger filter", "second handler", "formatter", "handler level"],
)
def test_anything_configured_gets_the_record(
    tether_logs: io.StringIO, records: list[logging.LogRecord], change: str
) -> None:
    _alone()
    root = logging.getLogger("tether")
    handler = root.handlers[0]
    seen: list[logging.LogRecord] = []

    def see(record: logging.LogRecord) -> bool:
        seen.append(record)
        return True

    other = io.StringIO()
    if change == "handler filter":
        handler.addFilter(see)
    elif change == "logger filter":
        ACCESS.addFilter(see)
    elif change == "second handler":
        root.addHandler(logging.StreamHandler(other))
    elif change == "formatter":
        handler.setFormatter(logging.Formatter("[%(name)s] %(message)s"))
    else:
        handler.setLevel(logging.WARNING)
    try:
        log_access(ACCESS, _cycle())
    finally:
        ACCESS.filters.clear()
    assert len(records) == 1
    if change.endswith("filter"):
        assert seen == records
        assert tether_logs.getvalue() == LINE
    elif change == "second handler":
        assert tether_logs.getvalue() == LINE
        assert other.getvalue() == LINE[len("INFO: ") :]
    elif change == "formatter":
        assert tether_logs.getvalue() == "[tether.access] " + LINE[len("INFO: ") :]
    else:
        assert tether_logs.getvalue() == ""


def test_json_lines_are_the_formatters_own(records: list[logging.LogRecord]) -> None:
    root = logging.getLogger("tether")
    saved = root.handlers[:], root.level, root.propagate
    configure_logging("info", "json")
    out = io.StringIO()
    try:
        (handler,) = root.handlers
        assert isinstance(handler, LineHandler)
        handler.setStream(out)
        cycle = _cycle()
        cycle.tag = Tagger(request_id_header="x-request-id").tag(cycle.request.headers)
        log_access(ACCESS, cycle)  # without a record
        assert records == []
        handler.addFilter(lambda record: True)
        log_access(ACCESS, cycle)  # through the logging module and JSONFormatter
        assert len(records) == 1
    finally:
        root.handlers[:], root.level, root.propagate = saved
    fast, slow = (json.loads(line) for line in out.getvalue().splitlines())
    for line in (fast, slow):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line.pop("time"))
    assert fast == slow
    assert fast["request_id"] == "abc"
    assert fast["message"] == '127.0.0.1:5555 - "GET /ok HTTP/1.1" 200 2 request_id=abc'
    assert fast["level"] == "info" and fast["logger"] == "tether.access"


def test_a_failing_stream_is_reported_as_the_handler_reports_it(
    tether_logs: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    _alone()
    tether_logs.close()  # writing raises ValueError
    assert write_info(ACCESS, "a line") is True
    assert "ValueError" in capsys.readouterr().err
