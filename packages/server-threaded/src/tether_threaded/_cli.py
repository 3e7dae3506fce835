"""The ``tether-threaded MODULE:APP`` command line.

Option names and meanings are those of ``tether serve`` (and uvicorn) where they apply to WSGI,
plus ``--threads``. Mistakes a user can make (a bad ``MODULE:APP``, a port in use, a missing
certificate) print one line and exit with status 1. The options ``tether serve`` has too are
added by :mod:`tether_server.config`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from tether_server.config import add_server_options, config_options, start_processes
from tether_server.option_types import positive_int
from tether_server.options import LOG_LEVELS, HelpFormatter
from tether_server.startup import (
    STOPPED_MESSAGE,
    configure_logging,
    notify_serving,
    running_message,
    where_text,
)
from tether_server.static_wsgi import with_static
from tether_threaded._config import Config, ConfigError, load_app
from tether_threaded._server import Server


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to render ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="tether-threaded",
        description="Serve a WSGI application (PEP 3333) with the Tether threaded server.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "app",
        metavar="MODULE:APP",
        help="the application, e.g. mysite.wsgi:application; a module alone means its "
        '"application", else its "app"',
    )
    groups = add_server_options(
        parser,
        root_path_help="where a proxy mounts the app: SCRIPT_NAME, and removed from the start "
        "of PATH_INFO when the path begins with it (waitress's --url-prefix; none by default)",
        concurrency_help="requests in flight (running or queued) before answering 503 with "
        "Retry-After (default: 1024 plus one per thread)",
        graceful_shutdown_help="seconds in-flight requests get to finish on shutdown "
        "('none': wait)",
        body_size_help="largest request body in bytes (413 beyond; default: 1 GiB, as in "
        "waitress, so that a body spooled to disk cannot fill it; none with --request-body "
        "stream, which spools nothing)",
    )
    groups.runtime.add_argument("--threads", type=positive_int, default=8, help="worker threads")
    groups.runtime.add_argument(
        "--expose-tracebacks",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="on an application error, send the traceback in the 500 response (development "
        "only: any client reads it; off by default, as in waitress)",
    )
    groups.runtime.add_argument(
        "--request-body",
        choices=("gather", "stream"),
        default="gather",
        help="gather: read each request body whole (memory, then a temporary file) before the "
        "app runs, and set CONTENT_LENGTH, as waitress does; stream: run the app at the head "
        "and let it read the body as it comes (wsgi.input_terminated), as gunicorn does, where "
        "a worker waits on a slow client for up to --timeout-body per stall",
    )
    groups.limits.add_argument(
        "--limit-spool",
        type=_bytes_or_none,
        default=4 << 30,
        metavar="BYTES",
        help="most bytes of gathered request bodies on disk at once, over all requests of a "
        "process (each --workers process has its own); an upload past it is answered 413 with "
        "Retry-After (default: 4 GiB; 'none': no limit, as in waitress)",
    )
    groups.websocket.add_argument(
        "--limit-websockets",
        type=positive_int,
        default=64,
        help="WebSocket sessions at once, each on its own thread outside --threads; "
        "further upgrades are answered 503",
    )
    return parser


def _bytes_or_none(text: str) -> int | None:
    return None if text == "none" else positive_int(text)


def config_from_args(args: argparse.Namespace) -> Config:
    """Turn parsed arguments into a :class:`Config`."""
    return Config(
        threads=args.threads,
        limit_websockets=args.limit_websockets,
        expose_tracebacks=args.expose_tracebacks,
        request_body=args.request_body,
        multiprocess=args.multiprocess,
        limit_spool=args.limit_spool,
        **config_options(args),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tether-threaded``; returns the exit status."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    log = logging.getLogger("tether.error")
    try:
        config = config_from_args(args)
        status = start_processes(args, argv, "tether_threaded", config)
        if status is not None:
            return status
        app = load_app(args.app, args.app_dir, args.factory)
        if args.static:
            app = with_static(app, args.static)
        server = Server(app, config)
        server.bind()
        # Alone, --limit-max-requests ends in a graceful shutdown.
        config.request_budget.stop = lambda: server.shutdown(wait=False)
    except ConfigError as exc:
        print(f"tether-threaded: error: {exc}", file=sys.stderr)
        return 1
    where = where_text(server.address, tls=config.ssl_certfile is not None, uds=config.uds)

    def serving() -> None:
        log.info("%s", running_message(where, args.app, f"WSGI, {config.threads} threads"))
        # A --workers supervisor (or systemd) waits for it; heartbeats go on the loop's passes.
        link = notify_serving(args.notify_fd)
        server.on_tick(link.heartbeat)
        server.on_stopping(link.stopping)

    server.serve(serving)
    log.info("%s", STOPPED_MESSAGE)
    return 0


__all__ = ["LOG_LEVELS", "build_parser", "config_from_args", "configure_logging", "main"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
