"""Prometheus metrics for both servers, with no dependency: counters, gauges and histograms,
their text exposition (format 0.0.4), and the sum over ``--workers`` processes.

A server's request path does not touch a :class:`Registry`: it counts in per-thread cells
(:class:`tether_server.server_metrics.ServerMetrics`), which a snapshot turns into one. Under
``--workers`` every worker writes a snapshot of its metrics to a file in a directory the supervisor owns, once a second and on exit
(:class:`SnapshotWriter`); the supervisor serves ``/metrics`` by adding the snapshots up
(:func:`merge`): counters and histograms of workers that have exited still count (a counter
never goes down), gauges only for workers that are alive. Why files and not a pipe or shared
memory: a worker that is stuck or killed leaves its last numbers behind, the supervisor needs
no protocol to read them, and a snapshot a second costs a worker well under a millisecond.

:func:`serve_metrics` answers ``GET /metrics`` on its own listener (``--metrics-port``), never
through the application's port, with the core's HTTP/1.1 connection: an accepting thread, a
thread per scrape (at most :data:`MAX_SCRAPES`), each head small and due within
:data:`SCRAPE_TIMEOUT`. Files rather than prometheus-client's multiprocess mode, which
would make it a runtime dependency of both servers (and keeps mmap files per process).
"""

from __future__ import annotations

import bisect
import contextlib
import json
import math
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from tether.errors import ProtocolError
from tether.http1 import NEED_DATA, Data, EndOfMessage, Request, Response, ServerConnection
from tether.limits import Limits

#: Histogram buckets for request durations, in seconds (Prometheus' defaults).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Labels = tuple[tuple[str, str], ...]
Snapshot = dict[str, dict[str, object]]


class _Metric:
    kind = ""

    def __init__(self, name: str, help: str) -> None:
        self.name = name
        self.help = help
        self.values: dict[Labels, float] = {}

    def snapshot(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "help": self.help,
            "values": [[list(map(list, labels)), value] for labels, value in self.values.items()],
        }


class Counter(_Metric):
    """A number that only goes up (requests served, bytes sent)."""

    kind = "counter"

    def inc(self, amount: float = 1.0, labels: Labels = ()) -> None:
        """Add ``amount`` for ``labels`` (a tuple of ``(name, value)`` pairs)."""
        values = self.values
        values[labels] = values.get(labels, 0.0) + amount


class Gauge(_Metric):
    """A number that goes up and down (connections open, requests in flight)."""

    kind = "gauge"

    def set(self, value: float, labels: Labels = ()) -> None:
        """Set the value for ``labels``."""
        self.values[labels] = value

    def inc(self, amount: float = 1.0, labels: Labels = ()) -> None:
        """Add ``amount`` (negative to subtract)."""
        self.values[labels] = self.values.get(labels, 0.0) + amount


class Histogram(_Metric):
    """Observations counted into cumulative buckets, with their sum and count.

    Each label set keeps one list (a count per bucket, the count above the last bound, the
    sum): an observation is one ``bisect`` and two additions. The cumulative ``le`` samples
    are made only when a snapshot is taken.
    """

    kind = "histogram"

    def __init__(self, name: str, help: str, buckets: Sequence[float]) -> None:
        super().__init__(name, help)
        self.buckets = tuple(sorted(buckets))
        self._series: dict[Labels, list[float]] = {}

    def observe(self, value: float, labels: Labels = ()) -> None:
        """Count ``value`` into its bucket (the sample's ``le`` labels are added on output)."""
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = [0.0] * (len(self.buckets) + 2)
        series[bisect.bisect_left(self.buckets, value)] += 1
        series[-1] += value

    def load(self, counts: Sequence[float], total: float, labels: Labels = ()) -> None:
        """Set the series for ``labels`` from a count per bucket (the last: above every bound)
        and the sum of the observations."""
        self._series[labels] = [*counts, total]

    def snapshot(self) -> dict[str, object]:
        values: list[list[object]] = []
        for labels, series in self._series.items():
            pairs = list(map(list, labels))
            running = 0.0
            for bound, count in zip((*self.buckets, math.inf), series, strict=False):
                running += count
                values.append([[*pairs, ["le", _bound(bound)]], running])
            values.append([[*pairs, ["", "sum"]], series[-1]])
        return {"kind": self.kind, "help": self.help, "values": values}


_M = TypeVar("_M", bound=_Metric)


class Registry:
    """The metrics of one process, by name."""

    def __init__(self) -> None:
        """An empty registry."""
        self.metrics: dict[str, _Metric] = {}

    def counter(self, name: str, help: str) -> Counter:
        """The counter ``name``, made on first use."""
        return self._get(name, lambda: Counter(name, help), Counter)

    def gauge(self, name: str, help: str) -> Gauge:
        """The gauge ``name``, made on first use."""
        return self._get(name, lambda: Gauge(name, help), Gauge)

    def histogram(
        self,
        name: str,
        help: str,
        buckets: Sequence[float] = DURATION_BUCKETS,
    ) -> Histogram:
        """The histogram ``name``, made on first use."""
        return self._get(name, lambda: Histogram(name, help, buckets), Histogram)

    def _get(self, name: str, make: Callable[[], _M], kind: type[_M]) -> _M:
        metric = self.metrics.get(name)
        if metric is None:
            made = make()
            self.metrics[name] = made
            return made
        if not isinstance(metric, kind):
            raise ValueError(f"metric {name!r} is already a {metric.kind}")
        return metric

    def snapshot(self) -> Snapshot:
        """Every metric as plain data (what a worker writes for its supervisor)."""
        return {name: metric.snapshot() for name, metric in self.metrics.items()}

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry alone."""
        return render(self.snapshot())


def _bound(value: float) -> str:
    return "+Inf" if math.isinf(value) else repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[Sequence[str]]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def render(snapshot: Snapshot) -> bytes:
    """Text exposition format 0.0.4 of a snapshot (one process's, or a merged one)."""
    lines: list[str] = []
    for name in sorted(snapshot):
        metric = snapshot[name]
        kind = str(metric["kind"])
        lines.append(f"# HELP {name} {_escape(str(metric['help']))}")
        lines.append(f"# TYPE {name} {kind}")
        values = metric["values"]
        assert isinstance(values, list)
        if kind != "histogram":
            for labels, value in sorted(values, key=lambda item: item[0]):
                lines.append(f"{name}{_labels(labels)} {_number(value)}")
            continue
        # Histograms: the bucket samples, then _sum and _count per label set.
        series: dict[tuple[tuple[str, str], ...], dict[str, float]] = {}
        for labels, value in values:
            plain = tuple((k, v) for k, v in labels if k not in ("le", ""))
            special = next(((k, v) for k, v in labels if k in ("le", "")), ("", ""))
            series.setdefault(plain, {})[f"{special[0]}={special[1]}"] = value
        for plain in sorted(series):
            samples = series[plain]
            bounds = sorted(
                (k[3:] for k in samples if k.startswith("le=")),
                key=lambda b: math.inf if b == "+Inf" else float(b),
            )
            for bound in bounds:
                pairs = [*plain, ("le", bound)]
                lines.append(f"{name}_bucket{_labels(pairs)} {_number(samples['le=' + bound])}")
            lines.append(f"{name}_sum{_labels(plain)} {_number(samples.get('=sum', 0.0))}")
            count = samples.get("le=+Inf", 0.0)
            lines.append(f"{name}_count{_labels(plain)} {_number(count)}")
    return ("\n".join(lines) + "\n").encode()


def merge(
    snapshots: Iterable[tuple[Snapshot, bool]],
) -> Snapshot:
    """Add up ``(snapshot, alive)`` pairs: counters and histograms of every process, gauges of
    live ones only."""
    total: Snapshot = {}
    sums: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for snapshot, alive in snapshots:
        for name, metric in snapshot.items():
            if metric["kind"] == "gauge" and not alive:
                continue
            total.setdefault(name, {"kind": metric["kind"], "help": metric["help"]})
            bucket = sums.setdefault(name, {})
            values = metric["values"]
            assert isinstance(values, list)
            for labels, value in values:
                key = tuple((str(k), str(v)) for k, v in labels)
                bucket[key] = bucket.get(key, 0.0) + float(value)
    for name, bucket in sums.items():
        total[name]["values"] = [[list(map(list, k)), v] for k, v in bucket.items()]
    return total


class SnapshotSource(Protocol):
    """What a :class:`SnapshotWriter` writes: anything with a ``snapshot()``."""

    def snapshot(self) -> Snapshot:
        """Every metric as plain data."""


class SnapshotWriter:
    """A worker's side: write its metrics to ``directory/<pid>.json`` atomically."""

    def __init__(self, registry: SnapshotSource, directory: str) -> None:
        """Write into ``directory`` (the supervisor's, from ``$TETHER_METRICS_DIR``)."""
        self.registry = registry
        self.path = Path(directory) / f"{os.getpid()}.json"

    def write(self) -> None:
        """One snapshot; errors are ignored (metrics must never stop serving)."""
        with contextlib.suppress(OSError):
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-")
            with os.fdopen(fd, "w") as out:
                json.dump(self.registry.snapshot(), out)
            os.replace(temp, self.path)


def read_snapshots(
    directory: str, alive: set[int] | None, only: Path | None = None
) -> list[tuple[Snapshot, bool]]:
    """Every worker's last snapshot in ``directory`` (or the one file ``only``), with whether
    its pid is in ``alive`` (None: every one is)."""
    out = []
    for path in [only] if only is not None else Path(directory).glob("*.json"):
        try:
            pid = int(path.stem)
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        out.append((data, alive is None or pid in alive))
    return out


#: Scrapes answered at once on the metrics listener; a connection beyond gets a 503 and is
#: closed at once, so clients that hold connections open cannot pile up threads.
MAX_SCRAPES = 4
#: Seconds a scraper has to send each request head whole (and to read each answer): a client
#: that dawdles is closed, giving its place back.
SCRAPE_TIMEOUT = 5.0
#: The only requests the listener expects are ``GET /metrics`` heads: small ones.
SCRAPE_LIMITS = Limits(
    max_request_line=1024,
    max_header_line=4096,
    max_header_count=32,
    max_head_size=8 * 1024,
    max_body_size=1024,
    head_timeout=SCRAPE_TIMEOUT,
    keep_alive_timeout=SCRAPE_TIMEOUT,
    max_requests=100,
)
_BUSY = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_TEXT = (b"content-type", b"text/plain; version=0.0.4; charset=utf-8")


def _scrape(client: socket.socket, exposition: Callable[[], bytes]) -> None:
    """Answer the requests on one connection, each head due within :data:`SCRAPE_TIMEOUT`."""
    conn = ServerConnection(limits=SCRAPE_LIMITS, now=time.monotonic())

    def next_event() -> object:
        while True:
            now = time.monotonic()
            event = conn.next_event(now)
            if event is not NEED_DATA:
                return event
            deadline = conn.next_deadline()
            left = SCRAPE_TIMEOUT if deadline is None else deadline[0] - now
            if left <= 0:
                raise TimeoutError
            client.settimeout(left)
            conn.receive_data(client.recv(65536), time.monotonic())

    try:
        while True:
            request = next_event()
            if not isinstance(request, Request):
                return
            while type(event := next_event()) is Data:
                pass
            if type(event) is not EndOfMessage:
                return
            path = request.target.split(b"?")[0]
            ok = path == b"/metrics" and request.method in (b"GET", b"HEAD")
            body = exposition() if ok else b"not found\n"
            head = Response(200 if ok else 404, [_TEXT, (b"content-length", b"%d" % len(body))])
            client.settimeout(SCRAPE_TIMEOUT)
            client.sendall(conn.send(head) + conn.send(Data(body)) + conn.send(EndOfMessage()))
            if not conn.keep_alive or not conn.start_next_cycle(time.monotonic()):
                return
    except ProtocolError as exc:
        with contextlib.suppress(OSError, ProtocolError):
            client.settimeout(SCRAPE_TIMEOUT)
            client.sendall(conn.error_response(exc))


def serve_metrics(
    sock: socket.socket, exposition: Callable[[], bytes], stop: threading.Event
) -> threading.Thread:
    """Answer ``GET /metrics`` (anything else: 404) on the listening ``sock`` until
    :func:`close_listener`: an accepting thread, and a thread per connection, at most :data:`MAX_SCRAPES` at
    once. The listener faces whoever can reach it: one small head per request, a deadline for
    each, and a cap on connections, so a hostile client costs a thread for seconds at most."""
    slots = threading.BoundedSemaphore(MAX_SCRAPES)

    def handle(client: socket.socket) -> None:
        try:
            with client, contextlib.suppress(OSError):
                _scrape(client, exposition)
        finally:
            slots.release()

    def run() -> None:
        # A blocking accept, woken by close_listener(): an idle listener costs no wake-ups.
        sock.settimeout(None)
        while not stop.is_set():
            try:
                client, _ = sock.accept()
            except OSError:
                if stop.is_set() or sock.fileno() < 0:
                    return
                time.sleep(0.1)  # EMFILE and the like: the listener stays open
                continue
            if not slots.acquire(blocking=False):
                with client, contextlib.suppress(OSError):
                    client.setblocking(False)
                    client.send(_BUSY)
                continue
            try:
                threading.Thread(
                    target=handle, args=(client,), name="tether-metrics-scrape", daemon=True
                ).start()
            except RuntimeError:  # no thread to be had: drop this one
                client.close()
                slots.release()

    thread = threading.Thread(target=run, name="tether-metrics", daemon=True)
    thread.start()
    return thread


def close_listener(sock: socket.socket, stop: threading.Event) -> None:
    """End :func:`serve_metrics`: set ``stop``, wake its blocking ``accept`` and close."""
    stop.set()
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # Linux: wakes accept() in the serving thread
    with contextlib.suppress(OSError):
        sock.close()


__all__ = [
    "DURATION_BUCKETS",
    "MAX_SCRAPES",
    "SCRAPE_LIMITS",
    "SCRAPE_TIMEOUT",
    "Counter",
    "Gauge",
    "Histogram",
    "Registry",
    "SnapshotSource",
    "SnapshotWriter",
    "close_listener",
    "merge",
    "read_snapshots",
    "render",
    "serve_metrics",
]
