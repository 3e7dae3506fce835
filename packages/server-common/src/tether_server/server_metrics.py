"""The metrics both servers keep, under the same names, and where they are served from.

:class:`ServerMetrics` is the one set of ``tether_*`` metrics; a server holds one (or None:
``--metrics-port`` not given, and each hook on the request path is one ``None`` test). Every
label value comes from a fixed set made here at import: a method is one of the standard ones
or ``other``, a status a class (``1xx``..``5xx``), a timeout or a refusal one of the kinds
below. No byte a client sends becomes a label, so no client can grow the table.

Updates take no lock: each thread that reports writes a cell of its own (the threaded
server's loop, its workers and WebSocket threads; the asyncio server's one loop thread), and
a snapshot adds the cells up. The request path only adds to plain ints and one list: a
response is one count at an index made of its method, status digit and duration bucket (a
single comparison for the first bucket, else a ``bisect`` on the bounds' tuple), and the
labelled series are built from those counts when scraped. Measured with
``bench/metrics_cost.py`` (instructions per request under callgrind, metrics off and on).
Gauges that a server already counts (open connections, requests in flight, WebSocket
sessions) are read from it when a snapshot is taken, and cost the request path nothing.

Where the numbers go (:class:`Exporter`): a lone server answers ``GET /metrics`` on
``--metrics-port`` from a thread; a worker of ``--workers N`` writes a snapshot a second (and
one on exit) into the directory its supervisor named in ``$TETHER_METRICS_DIR``, and the
supervisor (:class:`SupervisorMetrics`) answers for all of them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable
from pathlib import Path
from time import monotonic
from typing import Protocol

from tether_server.metrics import (
    DURATION_BUCKETS,
    Counter,
    Registry,
    Snapshot,
    SnapshotWriter,
    close_listener,
    merge,
    read_snapshots,
    render,
    serve_metrics,
)

#: The variable a supervisor sets for its workers: where their snapshots go.
METRICS_DIR_VARIABLE = "TETHER_METRICS_DIR"
#: Seconds between a worker's snapshots.
SNAPSHOT_INTERVAL = 1.0

#: The label values, fixed here: a request's method is one of these or "other", its status
#: a class or "none" (no response was sent), an error response's status one of these.
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
_METHOD_NAMES = (*METHODS, "other")
#: A method's first row in a cell's ``responses`` (six rows a method: one per status class).
_METHOD_ROW = {method.encode(): 6 * n for n, method in enumerate(METHODS)}
_OTHER_ROW = 6 * len(METHODS)
STATUS_CLASSES = ("none", "1xx", "2xx", "3xx", "4xx", "5xx")
ERROR_STATUSES = ("400", "408", "413", "414", "431", "501", "505", "other")
_ERROR_INDEX = {code.encode(): n for n, code in enumerate(ERROR_STATUSES[:-1])}
TIMEOUT_KINDS = ("head", "body", "keep_alive", "write", "websocket", "tls_handshake")
_TIMEOUT_INDEX = {kind: n for n, kind in enumerate(TIMEOUT_KINDS)}
#: The core driver's reasons for a deadline's close (``tether.serving_driver``).
_DRIVER_TIMEOUTS = {
    f"{kind} timeout": _TIMEOUT_INDEX[kind] for kind in ("head", "body", "keep_alive")
}
SHED_REASONS = ("concurrency", "websockets")
_SHED_INDEX = {reason: n for n, reason in enumerate(SHED_REASONS)}
RESTART_REASONS = ("exit", "healthcheck", "max_requests", "reload")
_RESTART_LABELS = {reason: (("reason", reason),) for reason in RESTART_REASONS}
_BUCKETS = DURATION_BUCKETS
_FIRST_BOUND = _BUCKETS[0]
#: Histogram buckets a (method, status digit) row holds: one per bound, one above them all.
_WIDTH = len(_BUCKETS) + 1
#: Where a method's rows start in a cell's ``responses``, and how far into them a status's
#: class row is (a status outside 100-599: none's, 0).
_METHOD_BASE = {method: row * _WIDTH for method, row in _METHOD_ROW.items()}
_OTHER_BASE = _OTHER_ROW * _WIDTH
_STATUS_BASE = {status: status // 100 * _WIDTH for status in range(100, 600)}


class ByteCounter(Protocol):
    """A connection that counts its own bytes (see :meth:`ServerMetrics.watch_bytes`)."""

    received: int
    sent: int


def byte_totals(counters: Iterable[ByteCounter | None]) -> tuple[int, int]:
    """Bytes read and written by ``counters`` (None: one that counts none): what a server's
    ``live()`` for :meth:`ServerMetrics.watch_bytes` gives from its open connections. Pass a
    copy of a set another thread changes (``list()`` takes it in one step)."""
    received = sent = 0
    for counter in counters:
        if counter is not None:
            received += counter.received
            sent += counter.sent
    return received, sent


class Cell:
    """One thread's numbers: only that thread writes them, so no update takes a lock.

    A server that knows which thread runs a connection (the asyncio server's one loop thread)
    takes that thread's cell once (:meth:`ServerMetrics.cell`) and writes it directly: a read's
    bytes are ``cell.received += n``, a response is :meth:`request`. Nothing on that path
    looks a label up or allocates beyond a float; :meth:`ServerMetrics.snapshot` turns the
    plain lists into labelled metrics when scraped.
    """

    __slots__ = (
        "connections",
        "errors",
        "messages",
        "received",
        "responses",
        "reused",
        "seconds",
        "sent",
        "sessions",
        "shed",
        "thread",
        "timeouts",
    )

    def __init__(self, thread: threading.Thread | None) -> None:
        """Zeros, written by ``thread`` alone (None: a total, written by nobody)."""
        self.thread = thread
        #: Responses by method, status and duration, in one list, so that a request adds one
        #: count: row ``(method index * 6 + status class index) * _WIDTH``, then the
        #: duration's histogram bucket (the last: above every bound). A snapshot sums it
        #: into requests by method and status, and into the histogram (1xx rows left out).
        self.responses = [0] * (len(_METHOD_NAMES) * len(STATUS_CLASSES) * _WIDTH)
        #: The durations' sum (1xx left out).
        self.seconds = 0.0
        self.reused = 0
        #: Bytes read from and written to clients.
        self.received = 0
        self.sent = 0
        self.connections = 0
        self.shed = [0] * len(SHED_REASONS)
        self.timeouts = [0] * len(TIMEOUT_KINDS)
        self.errors = [0] * len(ERROR_STATUSES)
        self.sessions = 0
        self.messages = [0, 0]  # in, out

    def request(self, method: bytes, status: int, started: float, reused: bool) -> None:
        """A response is complete (``status`` 0: none was sent) for a request whose head came
        at ``started`` (a ``time.monotonic()`` reading); ``reused``: the connection had served
        one before. A 101's session is not a duration."""
        seconds = monotonic() - started
        # The row: two look-ups in tables fixed at import (a status the application made up,
        # "999 Nope", counts as "none"), each already a multiple of the row width.
        row = _METHOD_BASE.get(method, _OTHER_BASE) + _STATUS_BASE.get(status, 0)
        # Most answers of a busy server come within the first bound: one comparison.
        if seconds <= _FIRST_BOUND:
            self.responses[row] += 1
        else:
            self.responses[row + bisect_left(_BUCKETS, seconds)] += 1
        if not 100 <= status < 200:
            self.seconds += seconds
        if reused:
            self.reused += 1

    def add(self, other: Cell) -> None:
        """Add ``other``'s numbers to these."""
        for name in self.__slots__:
            if name == "thread":
                continue
            mine, theirs = getattr(self, name), getattr(other, name)
            if isinstance(mine, list):
                for n, value in enumerate(theirs):
                    mine[n] += value
            else:
                setattr(self, name, mine + theirs)


class ServerMetrics:
    """One server process's ``tether_*`` metrics; the hooks the servers call.

    Each thread that reports gets a cell of its own (a ``threading.local``), written by it
    alone: an update is a few additions, with no lock, whatever the server's threads. A
    snapshot adds the cells up; a cell whose thread has ended is folded into a running total,
    so the cells kept are those of live threads.
    """

    def __init__(self) -> None:
        """No numbers yet."""
        self._local = threading.local()
        self._lock = threading.Lock()
        self._cells: list[Cell] = []
        self._retired = Cell(None)
        self._counts: Callable[[], tuple[int, int, int]] = lambda: (0, 0, 0)
        self._live_bytes: Callable[[], tuple[int, int]] = lambda: (0, 0)

    def watch(self, counts: Callable[[], tuple[int, int, int]]) -> None:
        """Read the gauges from the server at each snapshot: ``counts()`` gives its open
        connections, requests in flight and WebSocket sessions (from any thread)."""
        self._counts = counts

    def watch_bytes(self, live: Callable[[], tuple[int, int]]) -> None:
        """For a server whose connections count their own bytes (no per-read call here):
        ``live()`` gives the bytes read and written by the connections still open, and each
        connection adds its own to a cell with :meth:`fold` when it ends. ``live()`` runs
        under the lock :meth:`fold` takes, so no byte is counted twice or missed."""
        self._live_bytes = live

    def fold(self, cell: Cell, received: int, sent: int, forget: Callable[[], None]) -> None:
        """A connection counted by ``watch_bytes``'s ``live()`` ends: ``forget()`` takes it
        out of what ``live()`` sees and its bytes go into ``cell``, in one step for a scrape."""
        with self._lock:
            forget()
            cell.received += received
            cell.sent += sent

    def cell(self) -> Cell:
        """This thread's cell, made on its first report. A caller that stays on one thread
        (an event loop's) may keep it and write it directly, skipping the per-call lookup."""
        try:
            cell: Cell = self._local.cell
        except AttributeError:
            cell = self._local.cell = Cell(threading.current_thread())
            with self._lock:
                self._cells.append(cell)
        return cell

    # -- the hooks -------------------------------------------------------------------------------

    def request(self, method: bytes, status: int, started: float, reused: bool) -> None:
        """A response is complete: :meth:`Cell.request` on this thread's cell."""
        try:
            cell: Cell = self._local.cell
        except AttributeError:
            cell = self.cell()
        cell.request(method, status, started, reused)

    def sent(self, size: int) -> None:
        """Bytes written to a client outside its connection's own count (``os.sendfile``)."""
        try:
            self._local.cell.sent += size
        except AttributeError:
            self.cell().sent += size

    def connection(self) -> None:
        """A connection was accepted."""
        self.cell().connections += 1

    def shed(self, reason: str) -> None:
        """A request was answered 503 at a limit (one of :data:`SHED_REASONS`)."""
        self.cell().shed[_SHED_INDEX[reason]] += 1

    def timeout(self, kind: str) -> None:
        """A connection timed out (one of :data:`TIMEOUT_KINDS`)."""
        self.cell().timeouts[_TIMEOUT_INDEX[kind]] += 1

    def driver_closed(self, reason: str, output: bytes) -> None:
        """The core's driver closes a connection (``ConnectionDriver.reason``/``output``): count
        an expired deadline by kind, and an error response by its status."""
        cell = self.cell()
        kind = _DRIVER_TIMEOUTS.get(reason)
        if kind is not None:
            cell.timeouts[kind] += 1
        if output.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")):
            cell.errors[_ERROR_INDEX.get(output[9:12], len(ERROR_STATUSES) - 1)] += 1

    def websocket(self) -> None:
        """A WebSocket session began."""
        self.cell().sessions += 1

    def message(self, incoming: bool) -> None:
        """A WebSocket message was received (``incoming``) or sent."""
        self.cell().messages[0 if incoming else 1] += 1

    # -- output ----------------------------------------------------------------------------------

    def total(self) -> Cell:
        """Every thread's numbers added up (ended threads' cells folded in on the way)."""
        total = Cell(None)
        with self._lock:
            live = []
            for cell in self._cells:
                if cell.thread is not None and cell.thread.is_alive():
                    live.append(cell)
                else:
                    self._retired.add(cell)  # its thread is gone: it changes no more
            self._cells = live
            total.add(self._retired)
            for cell in live:
                total.add(cell)
            received, sent = self._live_bytes()
        total.received += received
        total.sent += sent
        return total

    def snapshot(self) -> Snapshot:
        """Every metric as plain data (the format :func:`tether_server.metrics.merge` adds)."""
        connections, in_flight, websockets = self._counts()
        cell = self.total()
        r = Registry()
        requests = r.counter(
            "tether_requests_total", "Responses, by request method and status class"
        )
        buckets = [0] * _WIDTH
        for n in range(len(_METHOD_NAMES) * len(STATUS_CLASSES)):
            counts = cell.responses[n * _WIDTH : (n + 1) * _WIDTH]
            count = sum(counts)
            if not count:
                continue
            method, cls = _METHOD_NAMES[n // 6], STATUS_CLASSES[n % 6]
            requests.inc(count, (("method", method), ("status", cls)))
            if cls != "1xx":  # a 101's session is not a duration
                for bucket, value in enumerate(counts):
                    buckets[bucket] += value
        duration = r.histogram(
            "tether_request_duration_seconds", "From a request's head to its response's end"
        )
        duration.load(buckets, cell.seconds)
        r.counter(
            "tether_keepalive_requests_total", "Requests that came on a reused connection"
        ).inc(cell.reused)
        r.counter("tether_received_bytes_total", "Bytes read from clients").inc(cell.received)
        r.counter("tether_sent_bytes_total", "Bytes written to clients").inc(cell.sent)
        r.counter("tether_connections_total", "Connections accepted").inc(cell.connections)
        _labelled(
            r.counter("tether_shed_total", "Requests answered 503 at a limit, by limit"),
            "reason",
            SHED_REASONS,
            cell.shed,
        )
        _labelled(
            r.counter("tether_timeouts_total", "Connections timed out, by deadline"),
            "kind",
            TIMEOUT_KINDS,
            cell.timeouts,
        )
        _labelled(
            r.counter("tether_protocol_errors_total", "Error responses to malformed requests"),
            "status",
            ERROR_STATUSES,
            cell.errors,
        )
        r.counter("tether_websocket_sessions_total", "WebSocket sessions").inc(cell.sessions)
        _labelled(
            r.counter("tether_websocket_messages_total", "WebSocket messages, by direction"),
            "direction",
            ("in", "out"),
            cell.messages,
        )
        r.gauge("tether_connections_open", "Connections open").set(connections)
        r.gauge("tether_requests_in_flight", "Requests being answered").set(in_flight)
        r.gauge("tether_websocket_sessions_open", "WebSocket sessions open").set(websockets)
        return r.snapshot()

    def render(self) -> bytes:
        """The Prometheus text exposition of this process alone."""
        return render(self.snapshot())


def _labelled(counter: Counter, name: str, values: tuple[str, ...], counts: list[int]) -> None:
    for value, count in zip(values, counts, strict=True):
        counter.inc(count, ((name, value),))


def bind_metrics(host: str, port: int) -> socket.socket:
    """The metrics listener on ``host``:``port`` (raises OSError)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=64)


class Exporter:
    """Where one server process's metrics go: a listener, or a worker's snapshot file."""

    def __init__(self, metrics: ServerMetrics, host: str, port: int, supervised: bool) -> None:
        """Bind the listener now (a lone server), or prepare the snapshots (a worker whose
        supervisor set ``$TETHER_METRICS_DIR``)."""
        self.metrics = metrics
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._writer: SnapshotWriter | None = None
        directory = os.environ.get(METRICS_DIR_VARIABLE)
        if supervised and directory:
            self._writer = SnapshotWriter(metrics, directory)
        else:
            self._sock = bind_metrics(host, port)

    @property
    def address(self) -> tuple[str, int] | None:
        """Where the listener listens (None: this process writes snapshots)."""
        return None if self._sock is None else self._sock.getsockname()[:2]

    def start(self) -> None:
        """Serve scrapes, or write snapshots, from a thread of its own."""
        if self._sock is not None:
            serve_metrics(self._sock, self.metrics.render, self._stop)
            return
        writer = self._writer
        assert writer is not None

        def run() -> None:
            while not self._stop.wait(SNAPSHOT_INTERVAL):
                writer.write()

        threading.Thread(target=run, name="tether-metrics-snapshots", daemon=True).start()

    def close(self) -> None:
        """Stop; a worker writes its last snapshot (the supervisor keeps its counters)."""
        self._stop.set()
        if self._writer is not None:
            self._writer.write()
        if self._sock is not None:
            close_listener(self._sock, self._stop)


class SupervisorMetrics:
    """The supervisor's side of ``--workers`` with ``--metrics-port``: a directory for the
    workers' snapshots, the sum of them served on the metrics port, and the restarts.

    A worker that exits leaves its last snapshot; :meth:`exited` folds its counters and
    histograms into a running total and removes the file, so the directory holds one file per
    live worker however many come and go (``--limit-max-requests``)."""

    def __init__(self, host: str, port: int) -> None:
        """Bind the listener (raises OSError) and make the directory, named to the workers
        through ``$TETHER_METRICS_DIR``."""
        self._sock = bind_metrics(host, port)
        self.directory = tempfile.mkdtemp(prefix="tether-metrics-")
        os.environ[METRICS_DIR_VARIABLE] = self.directory
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._registry = Registry()
        self._restarts = self._registry.counter(
            "tether_worker_restarts_total", "Workers replaced by the supervisor, by reason"
        )
        for labels in _RESTART_LABELS.values():
            self._restarts.inc(0, labels)
        self._retired: Snapshot = {}

    def start(self) -> None:
        """Serve the sum on the metrics port from a thread."""
        serve_metrics(self._sock, self.render, self._stop)

    def restarted(self, reason: str) -> None:
        """The supervisor replaced a worker (one of :data:`RESTART_REASONS`)."""
        with self._lock:
            self._restarts.inc(1, _RESTART_LABELS[reason])

    def exited(self, pid: int) -> None:
        """Worker ``pid`` is gone: keep its counters, drop its file."""
        path = Path(self.directory) / f"{pid}.json"
        with self._lock:
            last = read_snapshots(self.directory, set(), only=path)
            self._retired = merge([(self._retired, False), *last])
            with contextlib.suppress(OSError):
                path.unlink()

    def render(self) -> bytes:
        """The exposition: every worker's numbers added up, and the supervisor's own."""
        with self._lock:
            workers = read_snapshots(self.directory, None)
            return render(
                merge([(self._retired, False), (self._registry.snapshot(), True), *workers])
            )

    def close(self) -> None:
        """Stop serving and remove the directory."""
        close_listener(self._sock, self._stop)
        shutil.rmtree(self.directory, ignore_errors=True)
        os.environ.pop(METRICS_DIR_VARIABLE, None)


__all__ = [
    "METRICS_DIR_VARIABLE",
    "RESTART_REASONS",
    "SHED_REASONS",
    "TIMEOUT_KINDS",
    "ByteCounter",
    "Cell",
    "Exporter",
    "ServerMetrics",
    "SupervisorMetrics",
    "bind_metrics",
    "byte_totals",
]
