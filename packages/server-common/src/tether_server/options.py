"""The option groups both servers' command lines share, and their argparse types.

:mod:`tether_server.config` gathers these groups for each server; each server adds its own
options (``--threads``, ``--backend``, ...) around them. Parsing only: nothing here acts on a
value.
"""

from __future__ import annotations

import argparse
import ssl
from collections.abc import Collection

from tether_server.accesslog import ATOMS
from tether_server.option_types import (
    _access_format,
    _field_name,
    _header,
    _interval,
    _octal,
    _optional_seconds,
    _positive_int,
    _rate,
    _seconds,
    _tls_version,
)
from tether_server.shedding import DEFAULT_WINDOW

#: The ``--log-format`` choices.
LOG_FORMATS = ("text", "json")

#: The ``--log-level`` choices; "trace" logs as much as "debug".
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")

#: ``--limit-request-body``'s help where the server sets no limit of its own by default.
BODY_SIZE_HELP = "largest request body in bytes (413 beyond)"


class ConfigError(Exception):
    """A configuration problem the user must fix; the message is one line."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each option's default shown once: not when the help text already says
    it, and not for "no value" defaults (None, an empty string or list, an off switch)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        # A repeatable option starts from an empty list: "(default: [])" tells a user nothing.
        empty = isinstance(default, Collection) and not default
        if "default" in text or empty or default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def add_choice(
    group: argparse._ArgumentGroup, option: str, choices: tuple[str, ...], help: str
) -> None:
    """Add ``option``, which takes one of ``choices``; the first is the default."""
    group.add_argument(option, choices=choices, default=choices[0], help=help)


def add_switch(group: argparse._ArgumentGroup, option: str, default: bool, help: str) -> None:
    """Add ``option`` and its ``--no-`` form, on or off by ``default``."""
    group.add_argument(option, action=argparse.BooleanOptionalAction, default=default, help=help)


# -- shared option groups --------------------------------------------------------------------
# Each function fills a group the caller made, so a server can put its own options before or
# after the shared ones and its ``--help`` lists them in the order it always had.


def add_binding_options(group: argparse._ArgumentGroup) -> None:
    """Add ``--host``, ``--port``, ``--uds``, ``--fd`` and ``--backlog``."""
    group.add_argument("--host", default="127.0.0.1", help="address to bind (IPv4 or IPv6)")
    group.add_argument("--port", type=int, default=8000, help="port to bind (0 picks a free one)")
    group.add_argument(
        "--uds",
        default=None,
        metavar="PATH",
        help="bind to this Unix domain socket instead",
    )
    group.add_argument(
        "--unix-socket-perms",
        type=_octal,
        default=0o666,
        metavar="MODE",
        help="permissions of the --uds socket file, in octal (default: 666, as uvicorn sets "
        "them; waitress uses 600)",
    )
    group.add_argument(
        "--fd", type=int, default=None, help="serve on an already bound socket file descriptor"
    )
    group.add_argument("--backlog", type=_positive_int, default=2048, help="listen backlog")


def add_limit_options(
    group: argparse._ArgumentGroup,
    *,
    concurrency_help: str,
    graceful_shutdown_help: str,
    body_size_help: str = BODY_SIZE_HELP,
) -> None:
    """Add the concurrency, connection, request, timeout and size limits.

    Each server words some of them its own way (their defaults differ), so it passes their
    help texts.
    """
    group.add_argument(
        "--limit-concurrency", type=_positive_int, default=None, help=concurrency_help
    )
    group.add_argument(
        "--retry-after-window",
        type=_positive_int,
        default=DEFAULT_WINDOW,
        metavar="SECONDS",
        help="a request shed with 503 at a limit is told (Retry-After) to come back within "
        "this many seconds: a whole number drawn from the window's second half, so that "
        "clients shed together do not return together",
    )
    group.add_argument(
        "--limit-connections",
        type=_positive_int,
        default=None,
        help="stop accepting at this many open connections (no limit by default)",
    )
    group.add_argument(
        "--limit-connections-low",
        type=int,
        default=None,
        help="resume accepting at this many (default: 90%% of --limit-connections)",
    )
    group.add_argument(
        "--limit-requests-per-connection",
        type=_positive_int,
        default=None,
        help="requests served on one keep-alive connection before it is closed (no limit by "
        "default)",
    )
    group.add_argument(
        "--limit-max-requests",
        type=_positive_int,
        default=None,
        help="requests this process serves before it is replaced: under --workers the "
        "supervisor starts a new worker first, then the old one drains; alone, the server "
        "shuts down gracefully, as uvicorn's does (no limit by default)",
    )
    group.add_argument(
        "--limit-max-requests-jitter",
        type=_rate,
        default=0,
        metavar="N",
        help="add a random 0..N to --limit-max-requests in each process, so that workers do "
        "not all recycle at once (gunicorn's --max-requests-jitter)",
    )
    group.add_argument(
        "--health-path-prefix",
        default=None,
        metavar="PREFIX",
        help="answer PREFIX/live, PREFIX/ready and PREFIX/startup in the server itself, before "
        "the app and past --limit-concurrency (e.g. /_tether; off by default)",
    )
    group.add_argument(
        "--timeout-keep-alive",
        type=_seconds,
        default=5.0,
        help="seconds an idle keep-alive connection is kept open",
    )
    group.add_argument(
        "--timeout-request-head",
        type=_seconds,
        default=10.0,
        help="seconds for a whole request head (408 beyond)",
    )
    group.add_argument(
        "--timeout-body", type=_seconds, default=30.0, help="seconds a request body may stall"
    )
    group.add_argument(
        "--min-body-rate",
        type=_rate,
        default=500,
        help="bytes per second a request body must average once --timeout-body seconds have "
        "passed (a slower upload is closed; 0: no minimum)",
    )
    group.add_argument(
        "--timeout-write",
        type=_seconds,
        default=60.0,
        help="seconds a response or WebSocket may wait on a client that does not read before "
        "the connection is closed",
    )
    group.add_argument(
        "--min-write-rate",
        type=_rate,
        default=500,
        help="bytes per second a client must average while a response or WebSocket waits on "
        "it to read, once --timeout-write seconds of waiting have passed (a slower reader is "
        "closed; 0: no minimum)",
    )
    group.add_argument(
        "--timeout-graceful-shutdown",
        type=_optional_seconds,
        default=30.0,
        help=graceful_shutdown_help,
    )
    group.add_argument(
        "--h11-max-incomplete-event-size",
        dest="max_head_size",
        type=_positive_int,
        default=64 * 1024,
        help="largest request head in bytes (431 beyond)",
    )
    group.add_argument(
        "--limit-request-body",
        dest="max_body_size",
        type=_positive_int,
        default=None,
        help=body_size_help,
    )


def add_websocket_options(group: argparse._ArgumentGroup) -> None:
    """Add the WebSocket message size, keep-alive and inbox options."""
    group.add_argument(
        "--ws-max-size",
        type=_positive_int,
        default=16 * 1024 * 1024,
        help="largest WebSocket message in bytes, after decompression (closed with 1009 beyond)",
    )
    group.add_argument(
        "--ws-ping-interval",
        type=_interval,
        default=20.0,
        help="seconds between pings the server sends on a WebSocket, so that dead peers and "
        "idle proxies are noticed (0 or off: never)",
    )
    group.add_argument(
        "--ws-ping-timeout",
        type=_seconds,
        default=20.0,
        help="seconds to wait for the pong before closing with 1011",
    )
    group.add_argument(
        "--ws-close-timeout",
        type=_seconds,
        default=10.0,
        help="seconds to wait for the client's close frame after sending ours",
    )
    group.add_argument(
        "--ws-max-queue",
        type=_positive_int,
        default=32,
        metavar="N",
        help="messages the app has not received yet before reading the WebSocket pauses",
    )


def add_tls_options(group: argparse._ArgumentGroup) -> None:
    """Add the ``--ssl-*`` options that :func:`create_ssl_context` reads."""
    group.add_argument(
        "--ssl-certfile", default=None, help="certificate chain (PEM); serves HTTPS when given"
    )
    group.add_argument(
        "--ssl-keyfile", default=None, help="private key (PEM), if not in the certificate file"
    )
    group.add_argument("--ssl-keyfile-password", default=None, help="password of the key file")
    group.add_argument(
        "--ssl-ca-certs", default=None, help="CA certificates (PEM) to verify client certificates"
    )
    group.add_argument(
        "--ssl-cert-reqs",
        type=int,
        default=int(ssl.CERT_NONE),
        help="0 none, 1 optional, 2 required",
    )
    group.add_argument(
        "--ssl-ciphers", default="TLSv1.2:TLSv1.3", help="OpenSSL cipher list for TLS 1.2"
    )
    group.add_argument(
        "--ssl-version",
        type=_tls_version,
        default="TLSv1.2",
        help="the oldest TLS version accepted: TLSv1.2 or TLSv1.3 (uvicorn's protocol numbers "
        "2 and 17 mean the default)",
    )
    group.add_argument(
        "--timeout-tls-handshake",
        type=_seconds,
        default=10.0,
        help="seconds a client has to complete the TLS handshake",
    )


def add_logging_options(group: argparse._ArgumentGroup) -> None:
    """Add ``--log-level``, the access-log and default-header switches, and the request
    tagging options (:mod:`tether_server.tagging`)."""
    group.add_argument(
        "--log-level", choices=LOG_LEVELS, default="info", help="least severe message logged"
    )
    group.add_argument(
        "--log-config",
        default=None,
        metavar="PATH",
        help="a logging configuration (dictConfig as .json, or .yaml with PyYAML installed; "
        "fileConfig as .ini/.conf) applied after the defaults",
    )
    add_choice(
        group,
        "--log-format",
        LOG_FORMATS,
        "text lines, or one JSON object per line (time, level, logger, message, and the "
        "request's fields on access lines) for log collectors",
    )
    add_switch(group, "--access-log", True, "log one line per request")
    group.add_argument(
        "--access-log-format",
        "--access-logformat",
        dest="access_log_format",
        type=_access_format,
        default=None,
        metavar="FORMAT",
        help="write access lines in this format, in gunicorn's %%(NAME)s atoms (%%(h)s "
        '%%(l)s %%(u)s %%(t)s "%%(r)s" %%(s)s %%(b)s is the Common Log Format): '
        + " ".join(ATOMS)
        + ", {NAME}i a request field, {NAME}o a response field, {NAME}e the WSGI environ's "
        "entry or an environment variable (default: tether's own line)",
    )
    add_switch(
        group, "--server-header", True, "add 'Server: tether' to responses that lack a Server field"
    )
    add_switch(group, "--date-header", True, "add a Date field to responses that lack one")
    group.add_argument(
        "--header",
        dest="headers",
        action="append",
        type=_header,
        default=[],
        metavar="NAME:VALUE",
        help="add this field to every response that lacks it (repeatable; the app's own "
        "value wins), as uvicorn's --header",
    )
    add_switch(
        group,
        "--security-headers",
        False,
        "add X-Content-Type-Options: nosniff, Referrer-Policy: "
        "strict-origin-when-cross-origin and X-Frame-Options: SAMEORIGIN (and, over TLS, "
        "Strict-Transport-Security: max-age=31536000) to responses that lack them",
    )
    group.add_argument(
        "--request-id-header",
        default=None,
        metavar="NAME",
        type=_field_name,
        help="give each request an id: the client's (or proxy's) value of this field when it "
        "is a token of at most 128 characters, else a new one; echoed on the response, "
        "handed to the app (tether.request_id) and written on the access line (e.g. "
        "X-Request-Id; off by default)",
    )
    add_switch(
        group,
        "--trace-context",
        False,
        "read the W3C traceparent field: its trace id goes on the access line and, with "
        "the parent span, to the app (tether.trace)",
    )


def add_proxy_options(group: argparse._ArgumentGroup) -> None:
    """Add ``--proxy-headers`` and ``--forwarded-allow-ips`` (as uvicorn and gunicorn have them)."""
    add_switch(
        group,
        "--proxy-headers",
        True,
        "take the client address and scheme from X-Forwarded-For and X-Forwarded-Proto "
        "when a trusted proxy sends them (WSGI: also the host, port and prefix, and the "
        "forwarding fields of any other peer are removed from the environ)",
    )
    add_choice(
        group,
        "--forwarded-style",
        ("x-forwarded", "rfc7239"),
        "which fields the trusted proxy writes: X-Forwarded-For/-Proto, or RFC 7239 "
        "Forwarded (only one is read, so a client cannot slip in the other)",
    )
    group.add_argument(
        "--forwarded-allow-ips",
        default=None,
        help="peers trusted with proxy headers: comma-separated IP addresses, CIDR networks, "
        "'unix' (a Unix socket peer) or '*' (default: $FORWARDED_ALLOW_IPS, else 127.0.0.1)",
    )


def add_process_options(group: argparse._ArgumentGroup) -> None:
    """Add ``--workers``, ``--reload`` and ``--reload-dir`` (and the workers' ``--notify-fd``)."""
    group.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="server processes sharing the listening socket, under a supervisor that restarts "
        "any that dies; SIGHUP to it reloads them without losing a request (new workers, then "
        "the old ones drain), SIGTTIN / SIGTTOU add / remove one. Without --workers, SIGHUP "
        "stops the server gracefully, as SIGTERM does",
    )
    add_switch(
        group,
        "--reload",
        False,
        "restart the server when a .py file under the reload directories changes",
    )
    group.add_argument(
        "--reload-dir",
        action="append",
        default=None,
        help="a directory to watch with --reload (repeatable; default: --app-dir, else the "
        "current directory)",
    )
    group.add_argument(
        "--reload-include",
        action="append",
        default=None,
        metavar="GLOB",
        help="with --reload, also watch files matching this pattern (repeatable; *.py always)",
    )
    group.add_argument(
        "--reload-exclude",
        action="append",
        default=None,
        metavar="GLOB",
        help="with --reload, ignore files matching this pattern (repeatable; .*, *.py[cod], "
        "*~ and editor swap files always)",
    )
    group.add_argument(
        "--timeout-worker-healthcheck",
        type=_seconds,
        default=30.0,
        help="with --workers, a worker whose event loop has not ticked for this long is killed "
        "and replaced, and the log says which (gunicorn's --timeout)",
    )
    group.add_argument(
        "--env-file",
        default=None,
        metavar="PATH",
        help="load KEY=VALUE lines from this file into the environment before importing the app",
    )
    # How a worker tells its supervisor that it is serving, and learns that the supervisor is
    # gone (not for users).
    group.add_argument("--notify-fd", type=int, default=None, help=argparse.SUPPRESS)
    group.add_argument("--supervisor-fd", type=int, default=None, help=argparse.SUPPRESS)
    # Set by the supervisor when more than one worker serves the app (WSGI's wsgi.multiprocess).
    group.add_argument("--multiprocess", action="store_true", help=argparse.SUPPRESS)
