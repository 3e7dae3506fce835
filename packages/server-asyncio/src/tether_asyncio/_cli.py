"""The ``tether`` command line: ``tether serve [MODULE:APP] [options]``.

Option names match uvicorn's where the meaning is the same. Mistakes a user can make (a bad
``MODULE:APP``, a port in use, a missing certificate) print one line and exit non-zero. The
options ``tether-threaded`` has too are added by :mod:`tether_server.startup`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tether_asyncio._config import Config, ConfigError, bind_socket, load_app
from tether_asyncio.static import with_static
from tether_server.startup import (
    LOG_LEVELS,
    HelpFormatter,
    add_binding_options,
    add_limit_options,
    add_logging_options,
    add_process_options,
    add_proxy_options,
    add_tls_options,
    add_websocket_options,
    apply_process_options,
    configure_logging,
    shared_options,
    supervise,
)
from tether_server.static import add_static_option

DEMO_APP = "tether_asyncio.demo:app"


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
        formatter_class=HelpFormatter,
    )
    serve.add_argument(
        "app",
        nargs="?",
        default=None,
        metavar="MODULE:APP",
        help="the application, e.g. myproject.main:app (default: the built-in demo)",
    )
    add_binding_options(serve.add_argument_group("binding"))

    run = serve.add_argument_group("runtime")
    run.add_argument(
        "--backend", choices=("asyncio", "trio"), default="asyncio", help="the anyio backend"
    )
    run.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="asyncio event loop; auto uses uvloop when it is installed",
    )
    run.add_argument(
        "--lifespan",
        choices=("auto", "on", "off"),
        default="auto",
        help="run the ASGI lifespan protocol; auto: if the app supports it, on: require it",
    )
    run.add_argument(
        "--factory", action="store_true", help="MODULE:APP is a factory returning the app"
    )
    run.add_argument(
        "--interface",
        choices=("auto", "asgi3", "asgi2"),
        default="auto",
        help="the application's ASGI version; auto recognises ASGI 2 as uvicorn does",
    )
    run.add_argument("--app-dir", default=None, help="directory to import the app from")
    run.add_argument(
        "--root-path",
        default="",
        help="ASGI root_path: the prefix a proxy mounts the app under (none by default)",
    )
    add_process_options(run)
    add_static_option(run)

    add_limit_options(
        serve.add_argument_group("limits and timeouts"),
        concurrency_help="requests in flight before answering 503 (Retry-After) without calling "
        "the app",
        requests_option="--limit-requests-per-connection",
        requests_help="requests served on one keep-alive connection before it is closed",
        graceful_shutdown_help="seconds in-flight requests get to finish on shutdown",
    )

    ws = serve.add_argument_group("WebSocket")
    ws.add_argument(
        "--ws",
        choices=("auto", "none"),
        default="auto",
        help="serve WebSocket upgrades (auto) or refuse them (none)",
    )
    add_websocket_options(ws)
    ws.add_argument(
        "--ws-per-message-deflate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="offer permessage-deflate",
    )

    add_tls_options(serve.add_argument_group("TLS"))
    add_logging_options(serve.add_argument_group("logging and headers"))
    add_proxy_options(serve.add_argument_group("behind a proxy"))
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    """Turn parsed ``serve`` arguments into a :class:`Config`."""
    return Config(
        app=args.app or DEMO_APP,
        backend=args.backend,
        loop=args.loop,
        lifespan=args.lifespan,
        factory=args.factory,
        interface=args.interface,
        app_dir=args.app_dir,
        root_path=args.root_path,
        limit_requests_per_connection=args.limit_requests_per_connection,
        ws=args.ws,
        ws_per_message_deflate=args.ws_per_message_deflate,
        notify_fd=args.notify_fd,
        **shared_options(args),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "serve":
        parser.print_help()
        return 2
    configure_logging(args.log_level, args.log_format)
    from tether_asyncio._server import Server

    try:
        config = config_from_args(args)
        if config.limit_connections_low is not None and config.limit_connections is None:
            raise ConfigError("--limit-connections-low needs --limit-connections")
        try:
            server = Server(config)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        given = list(argv) if argv is not None else sys.argv[1:]
        command = [sys.executable, "-m", "tether_asyncio", *given]
        apply_process_options(args)
        status = supervise(args, command, lambda: bind_socket(config))
        if status is not None:
            return status
        if args.static:
            config.app = with_static(load_app(config), args.static)
        return server.run()
    except ConfigError as exc:
        print(f"tether: error: {exc}", file=sys.stderr)
        return 1


__all__ = ["LOG_LEVELS", "build_parser", "config_from_args", "configure_logging", "main"]


if __name__ == "__main__":
    sys.exit(main())
