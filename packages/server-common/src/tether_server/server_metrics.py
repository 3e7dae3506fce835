"""The metrics both servers keep, under the same names, and where they are served from.

:class:`ServerMetrics` is the one set of ``tether_*`` metrics; a server holds one (or None:
``--metrics-port`` not given, and each hook on the request path is one ``None`` test). Every
label value comes from a fixed set made here at import: a method is one of the standard ones
or ``other``, a status a class (``1xx``..``5xx``), a timeout or a refusal one of the kinds
below. No byte a client sends becomes a label, so no client can grow the table.

Numbers change under one lock (the threaded server updates from several threads, and the
scraping thread reads): one acquisition per request for its count, duration and status, one
per ``recv``/``send`` for the bytes. Gauges that a server already counts (open connections,
requests in flight, WebSocket sessions) are read from it when a snapshot is taken, and cost
the request path nothing.

Where the numbers go (:func:`start_exporter`): a lone server answers ``GET /metrics`` on
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
from collections.abc import Callable
from pathlib import Path

from tether_server.metrics import (
    Labels,
    Registry,
    Snapshot,
    SnapshotWriter,
    merge,
    read_snapshots,
    render,
    serve_metrics,
)

#: The variable a supervisor sets for its workers: where their snapshots go.
METRICS_DIR_VARIABLE = "TETHER_METRICS_DIR"
#: Seconds between a worker's snapshots.
SNAPSHOT_INTERVAL = 1.0

_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
#: (method bytes, status // 100) -> the labels; anything else is ("other", ...) or "none".
_REQUEST_LABELS: dict[tuple[bytes, int], Labels] = {
    (method.encode(), n + 1): (("method", method), ("status", cls))
    for method in _METHODS
    for n, cls in enumerate(_CLASSES)
}
_OTHER_LABELS: dict[int, Labels] = {
    n + 1: (("method", "other"), ("status", cls)) for n, cls in enumerate(_CLASSES)
}
_NO_RESPONSE: Labels = (("method", "any"), ("status", "none"))
#: Statuses of the error responses the server makes for a client's mistake.
_ERROR_LABELS: dict[bytes, Labels] = {
    code: (("status", code.decode()),)
    for code in (b"400", b"408", b"413", b"414", b"431", b"501", b"505")
}
_OTHER_ERROR: Labels = (("status", "other"),)
TIMEOUT_KINDS = ("head", "body", "keep_alive", "write", "websocket", "tls_handshake")
_TIMEOUT_LABELS = {kind: (("kind", kind),) for kind in TIMEOUT_KINDS}
#: The core driver's reasons for a deadline's close (``tether.serving_driver``).
_DRIVER_TIMEOUTS = {f"{kind} timeout": kind for kind in ("head", "body", "keep_alive")}
SHED_REASONS = ("concurrency", "connections", "websockets")
_SHED_LABELS = {reason: (("reason", reason),) for reason in SHED_REASONS}
_IN: Labels = (("direction", "in"),)
_OUT: Labels = (("direction", "out"),)
RESTART_REASONS = ("exit", "healthcheck", "max_requests", "reload")
_RESTART_LABELS = {reason: (("reason", reason),) for reason in RESTART_REASONS}


class ServerMetrics:
    """One server process's ``tether_*`` metrics; the hooks the servers call."""

    def __init__(self) -> None:
        """Every metric, registered at once (a scrape lists them all, zeros included)."""
        self.lock = threading.Lock()
        r = self.registry = Registry()
        self._requests = r.counter(
            "tether_requests_total", "Responses, by request method and status class"
        )
        self._duration = r.histogram(
            "tether_request_duration_seconds", "From a request's head to its response's end"
        )
        self._reused = r.counter(
            "tether_keepalive_requests_total", "Requests that came on a reused connection"
        )
        self._received = r.counter("tether_received_bytes_total", "Bytes read from clients")
        self._sent = r.counter("tether_sent_bytes_total", "Bytes written to clients")
        self._connections = r.counter("tether_connections_total", "Connections accepted")
        self._shed = r.counter("tether_shed_total", "Requests answered 503 at a limit, by limit")
        self._timeouts = r.counter("tether_timeouts_total", "Connections timed out, by deadline")
        self._errors = r.counter(
            "tether_protocol_errors_total", "Error responses to malformed requests, by status"
        )
        self._sessions = r.counter("tether_websocket_sessions_total", "WebSocket sessions")
        self._messages = r.counter(
            "tether_websocket_messages_total", "WebSocket messages, by direction"
        )
        self._open = r.gauge("tether_connections_open", "Connections open")
        self._in_flight = r.gauge("tether_requests_in_flight", "Requests being answered")
        self._ws_open = r.gauge("tether_websocket_sessions_open", "WebSocket sessions open")
        for labels in _SHED_LABELS.values():
            self._shed.inc(0, labels)
        for labels in _TIMEOUT_LABELS.values():
            self._timeouts.inc(0, labels)
        self._counts: Callable[[], tuple[int, int, int]] = lambda: (0, 0, 0)

    def watch(self, counts: Callable[[], tuple[int, int, int]]) -> None:
        """Read the gauges from the server at each snapshot: ``counts()`` gives its open
        connections, requests in flight and WebSocket sessions (from any thread)."""
        self._counts = counts

    # -- the hooks (each takes the lock once) ----------------------------------------------------

    def request(self, method: bytes, status: int, seconds: float, reused: bool) -> None:
        """A response is complete (``status`` 0: none was sent); ``reused``: the request came
        on a connection that had served one before."""
        cls = status // 100
        labels = _REQUEST_LABELS.get((method, cls))
        if labels is None:
            labels = _OTHER_LABELS.get(cls, _NO_RESPONSE)
        with self.lock:
            self._requests.inc(1, labels)
            self._duration.observe(seconds)
            if reused:
                self._reused.inc()

    def received(self, size: int) -> None:
        """Bytes read from a client."""
        with self.lock:
            self._received.inc(size)

    def sent(self, size: int) -> None:
        """Bytes written to a client."""
        with self.lock:
            self._sent.inc(size)

    def connection(self) -> None:
        """A connection was accepted."""
        with self.lock:
            self._connections.inc()

    def shed(self, reason: str) -> None:
        """A request was answered 503 at a limit (one of :data:`SHED_REASONS`)."""
        with self.lock:
            self._shed.inc(1, _SHED_LABELS[reason])

    def timeout(self, kind: str) -> None:
        """A connection timed out (one of :data:`TIMEOUT_KINDS`)."""
        with self.lock:
            self._timeouts.inc(1, _TIMEOUT_LABELS[kind])

    def driver_closed(self, reason: str, output: bytes) -> None:
        """The core's driver closes a connection (``ConnectionDriver.reason``/``output``): count
        an expired deadline by kind, and an error response by its status."""
        kind = _DRIVER_TIMEOUTS.get(reason)
        if kind is not None:
            self.timeout(kind)
        if output.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")):
            labels = _ERROR_LABELS.get(output[9:12], _OTHER_ERROR)
            with self.lock:
                self._errors.inc(1, labels)

    def websocket(self) -> None:
        """A WebSocket session began."""
        with self.lock:
            self._sessions.inc()

    def message(self, incoming: bool) -> None:
        """A WebSocket message was received (``incoming``) or sent."""
        with self.lock:
            self._messages.inc(1, _IN if incoming else _OUT)

    # -- output ----------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Every metric as plain data, the gauges read now."""
        connections, in_flight, websockets = self._counts()
        with self.lock:
            self._open.set(connections)
            self._in_flight.set(in_flight)
            self._ws_open.set(websockets)
            return self.registry.snapshot()

    def render(self) -> bytes:
        """The Prometheus text exposition of this process alone."""
        return render(self.snapshot())


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
            with contextlib.suppress(OSError):
                self._sock.close()


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
        self._stop.set()
        with contextlib.suppress(OSError):
            self._sock.close()
        shutil.rmtree(self.directory, ignore_errors=True)
        os.environ.pop(METRICS_DIR_VARIABLE, None)


__all__ = [
    "METRICS_DIR_VARIABLE",
    "RESTART_REASONS",
    "SHED_REASONS",
    "TIMEOUT_KINDS",
    "Exporter",
    "ServerMetrics",
    "SupervisorMetrics",
    "bind_metrics",
]
