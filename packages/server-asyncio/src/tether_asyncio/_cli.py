"""The ``tether`` command line: ``tether serve [MODULE:APP] [options]``.

Option names match uvicorn's where the meaning is the same. Mistakes a user can make (a bad
``MODULE:APP``, a port in use, a missing certificate) print one line and exit non-zero. The
options ``tether-threaded`` has too are added by :mod:`tether_server.config`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tether_asyncio._config import Config, ConfigError, load_app
from tether_asyncio.static import with_static
from tether_server.config import add_server_options, config_options, start_processes
from tether_server.conform import add_arguments as add_conform_arguments
from tether_server.conform import command as conform_command
from tether_server.options import LOG_LEVELS, HelpFormatter, add_choice, add_switch
from tether_server.startup import configure_logging

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
    conform = commands.add_parser(
        "conform",
        help="test a running HTTP/1.1 server against the RFCs",
        formatter_class=HelpFormatter,
    )
    add_conform_arguments(conform)

    groups = add_server_options(
        serve,
        root_path_help="ASGI root_path: where a proxy mounts the app; the request path keeps "
        "it, as in uvicorn (none by default)",
        concurrency_help="requests in flight before answering 503 (Retry-After) without calling "
        "the app (no limit by default)",
        graceful_shutdown_help="seconds in-flight requests get to finish on shutdown",
    )
    run = groups.runtime
    add_choice(run, "--backend", ("asyncio", "trio"), "the anyio backend")
    add_choice(
        run,
        "--loop",
        ("auto", "asyncio", "uvloop"),
        "asyncio event loop; auto uses uvloop when it is installed",
    )
    add_choice(
        run,
        "--lifespan",
        ("auto", "on", "off"),
        "run the ASGI lifespan protocol; auto: if the app supports it, on: require it",
    )
    add_choice(
        run,
        "--interface",
        ("auto", "asgi3", "asgi2"),
        "the application's ASGI version; auto recognises ASGI 2 as uvicorn does",
    )
    ws = groups.websocket
    add_choice(
        ws, "--ws", ("auto", "none"), "serve WebSocket upgrades (auto) or refuse them (none)"
    )
    add_switch(ws, "--ws-per-message-deflate", True, "offer permessage-deflate")
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
        ws=args.ws,
        ws_per_message_deflate=args.ws_per_message_deflate,
        **config_options(args),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "conform":
        return conform_command(args)
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
        status = start_processes(args, argv, "tether_asyncio", config)
        if status is not None:
            return status
        if args.static:
            config.app = with_static(load_app(config), args.static)
        # Alone, --limit-max-requests ends in a graceful shutdown.
        config.request_budget.stop = server.request_exit
        return server.run()
    except ConfigError as exc:
        print(f"tether: error: {exc}", file=sys.stderr)
        return 1


__all__ = ["LOG_LEVELS", "build_parser", "config_from_args", "configure_logging", "main"]


if __name__ == "__main__":
    sys.exit(main())
