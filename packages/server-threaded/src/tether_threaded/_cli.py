"""The ``tether-threaded MODULE:APP`` command line.

Option names and meanings are those of ``tether serve`` (and uvicorn) where they apply to WSGI,
plus ``--threads``. Mistakes a user can make (a bad ``MODULE:APP``, a port in use, a missing
certificate) print one line and exit with status 1.
"""

from __future__ import annotations

import argparse
import logging
import ssl
import sys
from collections.abc import Sequence

from tether_threaded._config import Config, ConfigError, load_app
from tether_threaded._server import Server

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _optional_seconds(text: str) -> float | None:
    if text.lower() in ("none", "off"):
        return None
    return _seconds(text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to render ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="tether-threaded",
        description="Serve a WSGI application (PEP 3333) with the Tether threaded server.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("app", metavar="MODULE:APP", help="the application, e.g. mysite.wsgi:app")
    bind = parser.add_argument_group("binding")
    bind.add_argument("--host", default="127.0.0.1", help="address to bind (IPv4 or IPv6)")
    bind.add_argument("--port", type=int, default=8000, help="port to bind (0 picks a free one)")
    bind.add_argument("--uds", default=None, help="bind to this Unix domain socket instead")
    bind.add_argument(
        "--fd", type=int, default=None, help="serve on an already bound socket file descriptor"
    )
    bind.add_argument("--backlog", type=_positive_int, default=2048, help="listen backlog")

    run = parser.add_argument_group("runtime")
    run.add_argument("--threads", type=_positive_int, default=8, help="worker threads")
    run.add_argument("--app-dir", default=None, help="directory to import the app from")
    run.add_argument(
        "--factory", action="store_true", help="MODULE:APP is a factory returning the app"
    )
    run.add_argument("--root-path", default="", help="SCRIPT_NAME (mount point behind a proxy)")

    limits = parser.add_argument_group("limits and timeouts")
    limits.add_argument(
        "--limit-concurrency",
        type=_positive_int,
        default=None,
        help="requests in flight (running or queued) before answering 503 with Retry-After "
        "(default: 1024 plus one per thread)",
    )
    limits.add_argument(
        "--limit-connections",
        type=_positive_int,
        default=None,
        help="stop accepting at this many open connections",
    )
    limits.add_argument(
        "--limit-connections-low",
        type=int,
        default=None,
        help="resume accepting at this many (default: 90%% of --limit-connections)",
    )
    limits.add_argument(
        "--limit-max-requests",
        type=_positive_int,
        default=None,
        help="requests served on one connection before it is closed",
    )
    limits.add_argument("--timeout-keep-alive", type=_seconds, default=5.0)
    limits.add_argument(
        "--timeout-request-head",
        type=_seconds,
        default=10.0,
        help="seconds for a whole request head (408 beyond)",
    )
    limits.add_argument(
        "--timeout-body", type=_seconds, default=30.0, help="seconds a request body may stall"
    )
    limits.add_argument(
        "--timeout-graceful-shutdown",
        type=_optional_seconds,
        default=30.0,
        help="seconds in-flight requests get to finish on shutdown ('none': wait)",
    )
    limits.add_argument(
        "--h11-max-incomplete-event-size",
        dest="max_head_size",
        type=_positive_int,
        default=64 * 1024,
        help="largest request head in bytes (431 beyond)",
    )
    limits.add_argument(
        "--limit-request-body",
        dest="max_body_size",
        type=_positive_int,
        default=None,
        help="largest request body in bytes (413 beyond)",
    )

    ws = parser.add_argument_group("WebSocket")
    ws.add_argument("--ws-max-size", type=_positive_int, default=16 * 1024 * 1024)
    ws.add_argument("--ws-ping-interval", type=_optional_seconds, default=None)
    ws.add_argument("--ws-ping-timeout", type=_seconds, default=20.0)
    ws.add_argument("--ws-close-timeout", type=_seconds, default=10.0)

    tls = parser.add_argument_group("TLS")
    tls.add_argument("--ssl-certfile", default=None)
    tls.add_argument("--ssl-keyfile", default=None)
    tls.add_argument("--ssl-keyfile-password", default=None)
    tls.add_argument("--ssl-ca-certs", default=None)
    tls.add_argument(
        "--ssl-cert-reqs",
        type=int,
        default=int(ssl.CERT_NONE),
        help="0 none, 1 optional, 2 required",
    )
    tls.add_argument("--ssl-ciphers", default="TLSv1.2:TLSv1.3")

    out = parser.add_argument_group("logging and headers")
    out.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    out.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True)
    out.add_argument("--server-header", action=argparse.BooleanOptionalAction, default=True)
    out.add_argument("--date-header", action=argparse.BooleanOptionalAction, default=True)
    return parser


def configure_logging(level: str) -> None:
    """Send ``tether.*`` logs to stderr at ``level``."""
    numeric = logging.DEBUG if level == "trace" else getattr(logging, level.upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger("tether")
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    root.propagate = False


def config_from_args(args: argparse.Namespace) -> Config:
    """Turn parsed arguments into a :class:`Config`."""
    return Config(
        host=args.host,
        port=args.port,
        uds=args.uds,
        fd=args.fd,
        backlog=args.backlog,
        threads=args.threads,
        root_path=args.root_path,
        limit_concurrency=args.limit_concurrency,
        limit_connections=args.limit_connections,
        limit_connections_low=args.limit_connections_low,
        limit_max_requests=args.limit_max_requests,
        timeout_keep_alive=args.timeout_keep_alive,
        timeout_request_head=args.timeout_request_head,
        timeout_body=args.timeout_body,
        timeout_graceful_shutdown=args.timeout_graceful_shutdown,
        max_head_size=args.max_head_size,
        max_body_size=args.max_body_size,
        ws_max_size=args.ws_max_size,
        ws_ping_interval=args.ws_ping_interval,
        ws_ping_timeout=args.ws_ping_timeout,
        ws_close_timeout=args.ws_close_timeout,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        ssl_keyfile_password=args.ssl_keyfile_password,
        ssl_ca_certs=args.ssl_ca_certs,
        ssl_cert_reqs=args.ssl_cert_reqs,
        ssl_ciphers=args.ssl_ciphers,
        server_header=args.server_header,
        date_header=args.date_header,
        access_log=args.access_log,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tether-threaded``; returns the exit status."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    log = logging.getLogger("tether.error")
    try:
        config = config_from_args(args)
        app = load_app(args.app, args.app_dir, args.factory)
        server = Server(app, config)
        server.bind()
    except ConfigError as exc:
        print(f"tether-threaded: error: {exc}", file=sys.stderr)
        return 1
    where = config.uds if config.uds is not None else server.url()
    log.info("tether-threaded serving %s on %s with %d threads", args.app, where, config.threads)
    server.serve()
    log.info("tether-threaded stopped")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
