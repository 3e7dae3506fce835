"""What both servers' configurations and command lines share: one dataclass, one set of options.

``tether serve`` (ASGI) and ``tether-threaded`` (WSGI) take the same options under the same
names with the same meanings. :class:`ServerConfig` holds them (field names follow uvicorn's
options) and each server's ``Config`` extends it with its own (``--threads``, ``--backend``...);
:func:`add_server_options` adds them to a command line, in the groups its ``--help`` shows,
and :func:`config_options` reads them back as keyword arguments for ``Config``.
"""

from __future__ import annotations

import argparse
import ssl
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from tether.limits import Limits
from tether.serving import SERVER_HEADER, TrustedProxies, server_limits
from tether_server.accesslog import AccessFormat, compile_access_format
from tether_server.binding import bind_socket
from tether_server.options import (
    BODY_SIZE_HELP,
    ConfigError,
    add_binding_options,
    add_limit_options,
    add_logging_options,
    add_process_options,
    add_proxy_options,
    add_tls_options,
    add_websocket_options,
)
from tether_server.recycling import RequestBudget
from tether_server.server_metrics import Exporter, ServerMetrics, SupervisorMetrics
from tether_server.shedding import DEFAULT_WINDOW, RetryAfter
from tether_server.startup import apply_process_options, supervise, trusted_proxies
from tether_server.static import add_static_option
from tether_server.tagging import Tagger


@dataclass(kw_only=True)
class ServerConfig:
    """The options both servers share (keyword-only: a server's own fields may come first)."""

    host: str = "127.0.0.1"
    port: int = 8000
    uds: str | None = None
    #: Permissions of the ``uds`` socket file (uvicorn's 0o666; waitress's default is 0o600).
    unix_socket_perms: int = 0o666
    fd: int | None = None
    backlog: int = 2048
    #: Where a proxy mounts the application (ASGI ``root_path``, WSGI ``SCRIPT_NAME``).
    root_path: str = ""
    #: Most requests in flight before the server answers 503 itself.
    limit_concurrency: int | None = None
    #: Seconds within which shed clients are told to come back (:mod:`tether_server.shedding`).
    retry_after_window: int = DEFAULT_WINDOW
    #: Most open connections; at the limit the server stops accepting until some close.
    limit_connections: int | None = None
    #: Resume accepting at this many open connections (default: 90% of the limit).
    limit_connections_low: int | None = None
    #: Requests served on one keep-alive connection before it is closed.
    limit_requests_per_connection: int | None = None
    #: Requests this process serves before it is replaced (see :mod:`tether_server.recycling`).
    limit_max_requests: int | None = None
    #: A random 0..N added to ``limit_max_requests`` per process.
    limit_max_requests_jitter: int = 0
    #: Answer ``PREFIX/live``, ``/ready`` and ``/startup`` before the app (None: off).
    health_path_prefix: str | None = None
    timeout_keep_alive: float = 5.0
    timeout_request_head: float = 10.0
    timeout_body: float = 30.0
    #: Bytes per second a request body must average after ``timeout_body`` seconds (0: none).
    min_body_rate: int = 500
    #: Seconds a response or WebSocket may make no progress towards a client that does not read.
    timeout_write: float = 60.0
    #: Bytes per second a client must average while a write waits on it, past
    #: ``timeout_write`` seconds of waiting (0: none; see :mod:`tether.serving_pace`).
    min_write_rate: int = 500
    timeout_tls_handshake: float = 10.0
    #: Seconds in-flight requests get to finish after SIGINT/SIGTERM; ``None`` waits for them.
    timeout_graceful_shutdown: float | None = 30.0
    #: Largest request head (uvicorn's ``--h11-max-incomplete-event-size``).
    max_head_size: int = 64 * 1024
    max_body_size: int | None = None
    ws_max_size: int = 16 * 1024 * 1024
    ws_ping_interval: float | None = 20.0
    ws_ping_timeout: float = 20.0
    ws_close_timeout: float = 10.0
    #: Messages received and not yet taken by the app before the server stops reading the
    #: socket (uvicorn's ``--ws-max-queue``); reading resumes at a quarter of it.
    ws_max_queue: int = 32
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_keyfile_password: str | None = None
    ssl_ca_certs: str | None = None
    ssl_cert_reqs: int = int(ssl.CERT_NONE)
    ssl_ciphers: str = "TLSv1.2:TLSv1.3"
    #: The oldest TLS version accepted: "TLSv1.2" or "TLSv1.3".
    ssl_version: str = "TLSv1.2"
    server_header: bool = True
    date_header: bool = True
    access_log: bool = True
    #: ``--access-log-format``: the access line in gunicorn's atoms (None: tether's own line).
    access_log_format: str | None = None
    #: ``--header``: ``(name, value)`` fields added to responses that lack them.
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: Add the :data:`tether_server.tagging.SECURITY_HEADERS` preset (HSTS too over TLS).
    security_headers: bool = False
    #: Give each request an id read from (or echoed in) this field; None: no request ids.
    request_id_header: str | None = None
    #: Read the W3C ``traceparent`` for the access log and the app.
    trace_context: bool = False
    #: Believe forwarding fields (X-Forwarded-*, Forwarded) from ``forwarded_allow_ips``.
    proxy_headers: bool = True
    #: Comma-separated IPs, CIDR networks, "unix" or "*"; None: $FORWARDED_ALLOW_IPS or 127.0.0.1.
    forwarded_allow_ips: str | None = None
    #: "x-forwarded" (X-Forwarded-For/-Proto/...) or "rfc7239" (Forwarded).
    forwarded_style: str = "x-forwarded"
    #: Install SIGINT/SIGTERM handlers (only possible in the main thread).
    install_signal_handlers: bool = True
    #: Write one byte to this file descriptor once serving (how a ``--workers`` worker tells
    #: the supervisor that it started), then close it.
    notify_fd: int | None = None
    #: Serve Prometheus metrics at ``/metrics`` on this port of ``host`` (None: no metrics).
    metrics_port: int | None = None
    #: Counts this process's requests against ``limit_max_requests`` (made from the fields).
    request_budget: RequestBudget = field(init=False, repr=False, compare=False)
    #: This process's metrics when ``metrics_port`` is set (made from the fields), else None:
    #: the servers' hooks test it, and do nothing more, when it is None.
    metrics: ServerMetrics | None = field(init=False, repr=False, compare=False)
    #: ``access_log_format`` compiled (None without it); a bad one raises ConfigError here.
    access_format: AccessFormat | None = field(init=False, repr=False, compare=False)
    #: The ``Retry-After`` of each shed 503 (made from ``retry_after_window``).
    retry_after: RetryAfter = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.retry_after = RetryAfter(self.retry_after_window)
        self.request_budget = RequestBudget(
            self.limit_max_requests, self.limit_max_requests_jitter, notify_fd=self.notify_fd
        )
        self.metrics = ServerMetrics() if self.metrics_port is not None else None
        self.access_format = None
        if self.access_log_format is not None and self.access_log:
            try:
                self.access_format = compile_access_format(self.access_log_format)
            except ValueError as exc:
                raise ConfigError(f"--access-log-format: {exc}") from None

    def metrics_exporter(self) -> Exporter | None:
        """Where :attr:`metrics` go (bound now, started by the server), or None; a port in use
        raises ConfigError."""
        if self.metrics is None or self.metrics_port is None:
            return None
        try:
            return Exporter(
                self.metrics, self.host, self.metrics_port, supervised=self.notify_fd is not None
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot listen for metrics on {self.host}:{self.metrics_port}: {exc}"
            ) from exc

    def tagger(self) -> Tagger | None:
        """Request ids, trace ids and added response fields, or None when all are off (then a
        server does nothing per request for them)."""
        tagger = Tagger(
            request_id_header=self.request_id_header,
            trace_context=self.trace_context,
            headers=self.headers,
            security_headers=self.security_headers,
            tls=self.ssl_certfile is not None,
            access_format=self.access_format,
        )
        return tagger if tagger.active else None

    def limits(self) -> Limits:
        """The per-connection core limits these options describe."""
        return server_limits(
            Limits(max_head_size=self.max_head_size),
            timeout_keep_alive=self.timeout_keep_alive,
            timeout_request_head=self.timeout_request_head,
            timeout_body=self.timeout_body,
            min_body_rate=self.min_body_rate,
            ws_ping_interval=self.ws_ping_interval,
            ws_ping_timeout=self.ws_ping_timeout,
            ws_close_timeout=self.ws_close_timeout,
            ws_max_size=self.ws_max_size,
            max_body_size=self.max_body_size,
            max_requests=self.limit_requests_per_connection,
        )

    def trusted_proxies(self) -> TrustedProxies | None:
        """The peers whose proxy headers are believed (None: ``proxy_headers`` is off)."""
        return trusted_proxies(
            self.proxy_headers, self.forwarded_allow_ips, forwarded_style=self.forwarded_style
        )

    def server_header_pair(self) -> tuple[bytes, bytes] | None:
        """The ``Server`` header to add, or None."""
        return SERVER_HEADER if self.server_header else None


class OptionGroups(NamedTuple):
    """The ``--help`` groups a server adds its own options to."""

    runtime: argparse._ArgumentGroup
    limits: argparse._ArgumentGroup
    websocket: argparse._ArgumentGroup
    logging: argparse._ArgumentGroup


def add_server_options(
    parser: argparse.ArgumentParser,
    *,
    root_path_help: str,
    concurrency_help: str,
    graceful_shutdown_help: str,
    body_size_help: str = BODY_SIZE_HELP,
) -> OptionGroups:
    """Add every option both servers share to ``parser``, in its groups; return the groups a
    server adds its own options to."""
    add_binding_options(parser.add_argument_group("binding"))
    runtime = parser.add_argument_group("runtime")
    runtime.add_argument(
        "--factory", action="store_true", help="MODULE:APP is a factory returning the app"
    )
    runtime.add_argument(
        "--app-dir",
        default=None,
        help="directory to import the app from (default: the current one)",
    )
    runtime.add_argument(
        "--root-path", "--url-prefix", dest="root_path", default="", help=root_path_help
    )
    add_static_option(runtime)
    add_process_options(runtime)
    limits = parser.add_argument_group("limits and timeouts")
    add_limit_options(
        limits,
        concurrency_help=concurrency_help,
        graceful_shutdown_help=graceful_shutdown_help,
        body_size_help=body_size_help,
    )
    websocket = parser.add_argument_group("WebSocket")
    add_websocket_options(websocket)
    add_tls_options(parser.add_argument_group("TLS"))
    logs = parser.add_argument_group("logging and headers")
    add_logging_options(logs)
    add_proxy_options(parser.add_argument_group("behind a proxy"))
    parser.add_argument_group("metrics").add_argument(
        "--metrics-port",
        type=_port,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics at /metrics on this port of --host, on a listener of "
        "its own (under --workers: the sum over the workers, from the supervisor)",
    )
    return OptionGroups(runtime, limits, websocket, logs)


#: :class:`ServerConfig` fields that no command-line option sets.
_NOT_OPTIONS = frozenset(("install_signal_handlers",))


def config_options(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed values of the shared options (every :class:`ServerConfig` field is one, under
    its argparse ``dest``), as keyword arguments for a server's ``Config``."""
    return {
        f.name: getattr(args, f.name)
        for f in fields(ServerConfig)
        if f.init and f.name not in _NOT_OPTIONS
    }


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return port


def start_processes(
    args: argparse.Namespace, argv: Sequence[str] | None, module: str, config: ServerConfig
) -> int | None:
    """Apply ``--env-file`` and ``--log-config``, then run ``--workers``/``--reload``: the
    supervisor's exit status, or None when this process serves (each worker runs
    ``python -m module`` with the same arguments)."""
    given = list(argv) if argv is not None else sys.argv[1:]
    apply_process_options(args)
    command = [sys.executable, "-m", module, *given]
    metrics = None
    if config.metrics_port is not None and (args.workers > 1 or args.reload):
        # The supervisor serves the workers' sum; they write snapshots (tether_server.metrics).
        try:
            metrics = SupervisorMetrics(config.host, config.metrics_port)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen for metrics on {config.host}:{config.metrics_port}: {exc}"
            ) from exc
        metrics.start()
    try:
        return supervise(args, command, lambda: bind_socket(config), metrics=metrics)
    finally:
        if metrics is not None:
            metrics.close()


__all__ = [
    "OptionGroups",
    "ServerConfig",
    "add_server_options",
    "config_options",
    "start_processes",
]
