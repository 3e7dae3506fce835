"""Prometheus metrics for both servers, with no dependency: counters, gauges and histograms,
their text exposition (format 0.0.4), and the sum over ``--workers`` processes.

Each server process keeps one :class:`Registry`; the request path only adds to numbers in a
dict it owns (no lock on the asyncio server's loop thread; a lock on the threaded server, whose
workers update from several threads). Under ``--workers`` every worker writes a snapshot of its
registry to a file in a directory the supervisor owns, once a second and on exit
(:class:`SnapshotWriter`); the supervisor serves ``/metrics`` by adding the snapshots up
(:func:`merge`): counters and histograms of workers that have exited still count (a counter
never goes down), gauges only for workers that are alive. Why files and not a pipe or shared
memory: a worker that is stuck or killed leaves its last numbers behind, the supervisor needs
no protocol to read them, and a snapshot a second costs a worker well under a millisecond.

:func:`serve_metrics` answers ``GET /metrics`` on its own listener (``--metrics-port``), never
through the application's port, on a thread of its own, with the core's HTTP/1.1 connection.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from tether.errors import ProtocolError
from tether.http1 import NEED_DATA, Data, EndOfMessage, Request, Response, ServerConnection

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
    """Observations counted into cumulative buckets, with their sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help: str, buckets: Sequence[float]) -> None:
        super().__init__(name, help)
        self.buckets = tuple(sorted(buckets))

    def observe(self, value: float, labels: Labels = ()) -> None:
        """Count ``value`` into its bucket (the sample's ``le`` labels are added here)."""
        values = self.values
        for bound in self.buckets:
            if value <= bound:
                key = (*labels, ("le", _bound(bound)))
                values[key] = values.get(key, 0.0) + 1
        inf = (*labels, ("le", "+Inf"))
        values[inf] = values.get(inf, 0.0) + 1
        total = (*labels, ("", "sum"))
        values[total] = values.get(total, 0.0) + value


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


class SnapshotWriter:
    """A worker's side: write the registry to ``directory/<pid>.json`` atomically."""

    def __init__(self, registry: Registry, directory: str) -> None:
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


def read_snapshots(directory: str, alive: set[int]) -> list[tuple[Snapshot, bool]]:
    """Every worker's last snapshot in ``directory``, with whether its pid is in ``alive``."""
    out = []
    for path in Path(directory).glob("*.json"):
        try:
            pid = int(path.stem)
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        out.append((data, pid in alive))
    return out


def serve_metrics(
    sock: socket.socket, exposition: Callable[[], bytes], stop: threading.Event
) -> threading.Thread:
    """Answer ``GET /metrics`` (anything else: 404) on the listening ``sock`` from a thread,
    until ``stop`` is set. One request at a time: a scraper is one client."""

    def handle(client: socket.socket) -> None:
        client.settimeout(10)
        conn = ServerConnection(now=0.0)  # the socket timeout bounds a slow scraper

        def next_event() -> object:
            while True:
                event = conn.next_event(0.0)
                if event is not NEED_DATA:
                    return event
                conn.receive_data(client.recv(65536), 0.0)

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
                head = Response(
                    200 if ok else 404,
                    [
                        (b"content-type", b"text/plain; version=0.0.4; charset=utf-8"),
                        (b"content-length", b"%d" % len(body)),
                    ],
                )
                client.sendall(conn.send(head) + conn.send(Data(body)) + conn.send(EndOfMessage()))
                if not conn.keep_alive:
                    return
                conn.start_next_cycle(0.0)
        except ProtocolError as exc:
            with contextlib.suppress(OSError):
                client.sendall(conn.error_response(exc))

    def run() -> None:
        sock.settimeout(0.5)
        while not stop.is_set():
            try:
                client, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with client, contextlib.suppress(OSError):
                handle(client)

    thread = threading.Thread(target=run, name="tether-metrics", daemon=True)
    thread.start()
    return thread


__all__ = [
    "DURATION_BUCKETS",
    "Counter",
    "Gauge",
    "Histogram",
    "Registry",
    "SnapshotWriter",
    "merge",
    "read_snapshots",
    "render",
    "serve_metrics",
]
