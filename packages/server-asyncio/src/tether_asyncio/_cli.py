"""The ``tether`` command line: ``tether serve [MODULE:APP] [options]``.

Option names match uvicorn's where the meaning is the same. Mistakes a user can make (a bad
``MODULE:APP``, a port in use, a missing certificate) print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import logging
import ssl
import sys
from collections.abc import Sequence

from tether_asyncio._config import Config, ConfigError

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
DEMO_APP = "tether_asyncio.demo:app"


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
    if text.lower() in ("none", "off", "0"):
        return None
    return _seconds(text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to render ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="tether",
        description="Tether: a strict, fast HTTP/1.1 and WebSocket toolkit.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve an ASGI application (or the built-in demo)",
        description=(
            "Serve an ASGI 3 application over HTTP/1.1 and WebSocket. Without MODULE:APP, "
            "serve the built-in demo app (file upload, ranged download, WebSocket echo, "
            "server-sent events)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    serve.add_argument(
        "app",
        nargs="?",
        default=None,
        metavar="MODULE:APP",
        help="the application, e.g. myproject.main:app (default: the built-in demo)",
    )
    bind = serve.add_argument_group("binding")
    bind.add_argument("--host", default="127.0.0.1", help="address to bind (IPv4 or IPv6)")
    bind.add_argument("--port", type=int, default=8000, help="port to bind (0 picks a free one)")
    bind.add_argument("--uds", default=None, help="bind to this Unix domain socket instead")
    bind.add_argument(
        "--fd", type=int, default=None, help="serve on an already bound socket file descriptor"
    )
    bind.add_argument("--backlog", type=_positive_int, default=2048, help="listen backlog")

    run = serve.add_argument_group("runtime")
    run.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    run.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="asyncio event loop; auto uses uvloop when it is installed",
    )
    run.add_argument("--lifespan", choices=("auto", "on", "off"), default="auto")
    run.add_argument(
        "--factory", action="store_true", help="MODULE:APP is a factory returning the app"
    )
    run.add_argument("--app-dir", default=None, help="directory to import the app from")
    run.add_argument("--root-path", default="", help="ASGI root_path (mount point behind a proxy)")

    limits = serve.add_argument_group("limits and timeouts")
    limits.add_argument(
        "--limit-concurrency",
        type=_positive_int,
        default=None,
        help="requests in flight before answering 503 (Retry-After) without calling the app",
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
        "--limit-requests-per-connection",
        dest="limit_requests_per_connection",
        type=_positive_int,
        default=None,
        help="requests served on one keep-alive connection before it is closed",
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
        help="seconds in-flight requests get to finish on shutdown",
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

    ws = serve.add_argument_group("WebSocket")
    ws.add_argument("--ws", choices=("auto", "none"), default="auto")
    ws.add_argument("--ws-max-size", type=_positive_int, default=16 * 1024 * 1024)
    ws.add_argument("--ws-ping-interval", type=_optional_seconds, default=None)
    ws.add_argument("--ws-ping-timeout", type=_seconds, default=20.0)
    ws.add_argument("--ws-close-timeout", type=_seconds, default=10.0)
    ws.add_argument(
        "--ws-per-message-deflate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="offer permessage-deflate",
    )

    tls = serve.add_argument_group("TLS")
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

    out = serve.add_argument_group("logging and headers")
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
    """Turn parsed ``serve`` arguments into a :class:`Config`."""
    return Config(
        app=args.app or DEMO_APP,
        host=args.host,
        port=args.port,
        uds=args.uds,
        fd=args.fd,
        backlog=args.backlog,
        backend=args.backend,
        loop=args.loop,
        lifespan=args.lifespan,
        factory=args.factory,
        app_dir=args.app_dir,
        root_path=args.root_path,
        limit_concurrency=args.limit_concurrency,
        limit_connections=args.limit_connections,
        limit_connections_low=args.limit_connections_low,
        limit_requests_per_connection=args.limit_requests_per_connection,
        timeout_keep_alive=args.timeout_keep_alive,
        timeout_request_head=args.timeout_request_head,
        timeout_body=args.timeout_body,
        timeout_graceful_shutdown=args.timeout_graceful_shutdown,
        max_head_size=args.max_head_size,
        max_body_size=args.max_body_size,
        ws=args.ws,
        ws_max_size=args.ws_max_size,
        ws_ping_interval=args.ws_ping_interval,
        ws_ping_timeout=args.ws_ping_timeout,
        ws_close_timeout=args.ws_close_timeout,
        ws_per_message_deflate=args.ws_per_message_deflate,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        ssl_keyfile_password=args.ssl_keyfile_password,
        ssl_ca_certs=args.ssl_ca_certs,
        ssl_cert_reqs=args.ssl_cert_reqs,
        ssl_ciphers=args.ssl_ciphers,
        access_log=args.access_log,
        server_header=args.server_header,
        date_header=args.date_header,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "serve":
        parser.print_help()
        return 2
    configure_logging(args.log_level)
    from tether_asyncio._server import Server

    try:
        config = config_from_args(args)
        if config.limit_connections_low is not None and config.limit_connections is None:
            raise ConfigError("--limit-connections-low needs --limit-connections")
        try:
            server = Server(config)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return server.run()
    except ConfigError as exc:
        print(f"tether: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
