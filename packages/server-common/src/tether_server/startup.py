"""Start-up helpers shared by both servers, run once before serving.

``tether serve`` (the ASGI server) and ``tether-threaded`` (the WSGI server) read the same
options, import an application the same way and build the same TLS context; that glue lives
here, once, so the two command lines cannot drift apart:

- :class:`ConfigError` is the one error for a configuration problem the user must fix.
- :func:`add_binding_options`, :func:`add_limit_options`, :func:`add_websocket_options`,
  :func:`add_tls_options` and :func:`add_logging_options` add the option groups both command
  lines share; each server adds its own options (``--threads``, ``--backend``, ...) around them.
- :mod:`tether_server.config` gathers them (and reads them back for a server's ``Config``).
- :func:`configure_logging` sends the ``tether.*`` logs to stderr at ``--log-level``.
- :func:`import_app` resolves ``MODULE:APP``; each server then checks that the result is a
  valid ASGI or WSGI application.
- :func:`create_ssl_context` builds the server-side TLS context from the ``--ssl-*`` options.
- :func:`trusted_proxies` reads ``--proxy-headers`` and ``--forwarded-allow-ips``.
- :func:`add_process_options` and :func:`supervise` give ``--workers`` and ``--reload``
  (the supervisor itself is :mod:`tether_server.supervisor`); :func:`notify_serving` is a worker's
  side of it, and :data:`STOP_SIGNALS` and :func:`stop_message` say how either server reacts
  to a signal.

Nothing here opens a socket, starts a thread or reads a clock: binding the listening socket
stays in each server (:func:`supervise` is handed the server's binding function), and the
worker processes (and a worker's watch on its supervisor) are :mod:`tether_server.supervisor`'s.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import signal
import socket
import ssl
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from tether.serving import TrustedProxies
from tether_server.systemd import Notifier
from tether_server.tagging import check_field_name, parse_header_option

if TYPE_CHECKING:
    from tether_server.server_metrics import SupervisorMetrics

#: The ``--log-format`` choices.
LOG_FORMATS = ("text", "json")

#: The ``--log-level`` choices; "trace" logs as much as "debug".
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


class ConfigError(Exception):
    """A configuration problem the user must fix; the message is one line."""


# -- argparse types --------------------------------------------------------------------------
# argparse names the type function in its message for a value it cannot convert
# ("argument --backlog: invalid _positive_int value: 'abc'"), so these keep the names both
# command lines have always shown.


def _positive_int(text: str) -> int:
    """An integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


#: Public name for servers' own options (argparse still shows "_positive_int" in its messages).
positive_int = _positive_int


def _octal(text: str) -> int:
    """File permissions in octal (``600``, ``0o660``)."""
    try:
        value = int(text.removeprefix("0o"), 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an octal mode: {text!r}") from None
    if not 0 <= value <= 0o777:
        raise argparse.ArgumentTypeError(f"not a file mode: {text!r}")
    return value


def _seconds(text: str) -> float:
    """A duration in seconds, not negative."""
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _rate(text: str) -> int:
    """A rate in bytes per second, not negative (0: no minimum)."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _tls_version(text: str) -> str:
    """``--ssl-version``: TLSv1.2 or TLSv1.3; uvicorn's ``ssl.PROTOCOL_TLS`` (2) and
    ``PROTOCOL_TLS_SERVER`` (17) numbers read as the default. Older versions are refused."""
    if text in ("2", "17"):
        return "TLSv1.2"
    if text not in ("TLSv1.2", "TLSv1.3"):
        raise argparse.ArgumentTypeError(f"TLSv1.2 or TLSv1.3, got {text!r}")
    return text


def _optional_seconds(text: str) -> float | None:
    """A duration in seconds, or None for "none" or "off" (any case)."""
    if text.lower() in ("none", "off"):
        return None
    return _seconds(text)


def _interval(text: str) -> float | None:
    """An interval in seconds, or None ("never") for "none", "off" or 0: a zero interval
    would mean "all the time"."""
    value = _optional_seconds(text)
    return value if value else None


def _header(text: str) -> tuple[str, str]:
    """``--header NAME:VALUE``."""
    try:
        return parse_header_option(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _field_name(text: str) -> str:
    """A header field name (an RFC 9110 token)."""
    try:
        return check_field_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each option's default shown once: not when the help text already says
    it, and not for "no value" defaults (None, an empty string, an off switch)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.default in (None, "", False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


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
) -> None:
    """Add the concurrency, connection, request, timeout and size limits.

    Each server words two of them its own way, so it passes their help texts.
    """
    group.add_argument(
        "--limit-concurrency", type=_positive_int, default=None, help=concurrency_help
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
        help="largest request body in bytes (413 beyond)",
    )


def add_websocket_options(group: argparse._ArgumentGroup) -> None:
    """Add the WebSocket message size and keep-alive options."""
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
    group.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="text lines, or one JSON object per line (time, level, logger, message, and the "
        "request's fields on access lines) for log collectors",
    )
    group.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="log one line per request",
    )
    group.add_argument(
        "--server-header",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add 'Server: tether' to responses that lack a Server field",
    )
    group.add_argument(
        "--date-header",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add a Date field to responses that lack one",
    )
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
    group.add_argument(
        "--security-headers",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="add X-Content-Type-Options: nosniff, Referrer-Policy: "
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
    group.add_argument(
        "--trace-context",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="read the W3C traceparent field: its trace id goes on the access line and, with "
        "the parent span, to the app (tether.trace)",
    )


def add_proxy_options(group: argparse._ArgumentGroup) -> None:
    """Add ``--proxy-headers`` and ``--forwarded-allow-ips`` (as uvicorn and gunicorn have them)."""
    group.add_argument(
        "--proxy-headers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="take the client address and scheme from X-Forwarded-For and X-Forwarded-Proto "
        "when a trusted proxy sends them (WSGI: also the host, port and prefix, and the "
        "forwarding fields of any other peer are removed from the environ)",
    )
    group.add_argument(
        "--forwarded-style",
        choices=("x-forwarded", "rfc7239"),
        default="x-forwarded",
        help="which fields the trusted proxy writes: X-Forwarded-For/-Proto, or RFC 7239 "
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
    group.add_argument(
        "--reload",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="restart the server when a .py file under the reload directories changes",
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


class JSONFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (UTC, ISO 8601, milliseconds), ``level``,
    ``logger``, ``message``, ``exception`` when there is one, and the fields a server attached
    as ``extra={"tether": {...}}`` (an access line's client, method, path, status, bytes,
    duration, request id...)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        out: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "tether", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure_logging(level: str, log_format: str = "text") -> None:
    """Send ``tether.*`` logs to stderr at ``level`` (one of :data:`LOG_LEVELS`), as text lines
    or, with ``log_format="json"``, one JSON object per line (a ``--log-config`` file, applied
    by :func:`apply_process_options`, may change any of it)."""
    numeric = logging.DEBUG if level == "trace" else getattr(logging, level.upper())
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger("tether")
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    root.propagate = False


def _apply_log_config(path: str) -> None:
    """Apply a ``--log-config`` file: dictConfig (JSON or YAML) or fileConfig (INI)."""
    import logging.config

    if not os.path.isfile(path):
        raise ConfigError(f"--log-config: no such file: {path}")
    try:
        if path.endswith(".json"):
            with open(path) as f:
                logging.config.dictConfig(json.load(f))
        elif path.endswith((".yaml", ".yml")):
            try:
                import yaml  # type: ignore[import-untyped]
            except ImportError:
                raise ConfigError("--log-config: a YAML file needs PyYAML installed") from None
            with open(path) as f:
                logging.config.dictConfig(yaml.safe_load(f))
        else:
            logging.config.fileConfig(path, disable_existing_loggers=False)
    except ConfigError:
        raise
    except Exception as exc:  # the logging module raises all kinds for a bad file
        raise ConfigError(f"--log-config {path}: {exc}") from None


def apply_process_options(args: argparse.Namespace) -> None:
    """``--env-file`` and ``--log-config``: what changes this process before the app is imported
    (workers inherit the environment). Raises :class:`ConfigError` for a bad file."""
    load_env_file(args.env_file)
    if args.log_config is not None:
        _apply_log_config(args.log_config)


def load_env_file(path: str | None, environ: dict[str, str] | None = None) -> None:
    """Load ``--env-file``: ``KEY=VALUE`` lines (``export`` allowed, ``#`` comments, values in
    single or double quotes) into the environment; variables already set are kept, as
    python-dotenv does by default."""
    if path is None:
        return
    target: Any = os.environ if environ is None else environ
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise ConfigError(f"--env-file {path}: {exc.strerror}") from None
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, eq, value = line.partition("=")
        key = key.strip()
        if not eq or not key.replace("_", "a").isalnum() or key[0].isdigit():
            raise ConfigError(f"--env-file {path}:{number}: not KEY=VALUE: {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].rstrip()
        target.setdefault(key, value)


def trusted_proxies(
    proxy_headers: bool,
    forwarded_allow_ips: str | None,
    environ: Mapping[str, str] = os.environ,
    *,
    forwarded_style: str = "x-forwarded",
) -> TrustedProxies | None:
    """The peers whose proxy headers a server believes, or None with ``--no-proxy-headers``.

    Without ``--forwarded-allow-ips`` the list comes from ``$FORWARDED_ALLOW_IPS``, else only
    127.0.0.1 (a proxy on the same machine) is trusted.
    """
    if not proxy_headers:
        return None
    spec = forwarded_allow_ips
    if spec is None:
        spec = environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
    try:
        return TrustedProxies(spec, rfc7239=forwarded_style == "rfc7239")
    except ValueError as exc:
        raise ConfigError(f"--forwarded-allow-ips: {exc}") from None


def supervise(
    args: argparse.Namespace,
    command: Sequence[str],
    bind: Callable[[], socket.socket],
    metrics: SupervisorMetrics | None = None,
) -> int | None:
    """Run the server under a supervisor for ``--workers`` > 1 or ``--reload``.

    ``command`` starts one worker (the same command line: ``--workers 1 --no-reload`` and the
    socket are added); ``bind`` makes the listening socket (raising ConfigError). Returns the
    exit status, or None when the server should simply run in this process.
    """
    if args.reload and args.workers > 1:
        raise ConfigError("--reload and --workers cannot be used together")
    if args.supervisor_fd is not None:
        from tether_server.supervisor import watch_supervisor

        global _supervised
        _supervised = True
        watch_supervisor(args.supervisor_fd)
    if args.workers == 1 and not args.reload:
        return None
    from tether_server.supervisor import Supervisor

    worker = [*command, "--workers", "1", "--no-reload"]
    if args.workers > 1:
        worker.append("--multiprocess")
    dirs = (args.reload_dir or [args.app_dir or os.getcwd()]) if args.reload else None
    sock = bind()
    try:
        return Supervisor(
            worker,
            args.workers,
            reload_dirs=dirs,
            reload_include=args.reload_include or (),
            reload_exclude=args.reload_exclude or (),
            healthcheck_timeout=args.timeout_worker_healthcheck or None,
            metrics=metrics,
        ).run(sock.fileno())
    finally:
        sock.close()


#: The signals both servers stop on, gracefully; a second one forces the exit.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

# Whether this process is a worker of a --workers supervisor (set by supervise()).
_supervised = False


def stop_message(signum: int) -> str:
    """The line a server logs when a stop signal (:data:`STOP_SIGNALS`) arrives.

    SIGHUP stops a server gracefully, handing over: requests in flight are answered and idle
    keep-alive connections are kept until the client's next request or their keep-alive
    timeout (see :mod:`tether_server.supervisor`), so a server that takes over the socket loses
    nothing. A worker gets it from its supervisor during a reload; a server on its own cannot
    re-import its app in place (modules already imported, and the app's state, would stay), so
    it says that reloading needs ``--workers``.
    """
    name = signal.Signals(signum).name
    if signum != signal.SIGHUP:
        return f"{name} received: shutting down"
    if _supervised:
        return f"{name} received: shutting down gracefully, handing over to the other workers"
    return (
        f"{name} received: shutting down gracefully (to reload without stopping, run with "
        "--workers: its supervisor reloads on SIGHUP)"
    )


# -- what both servers say when they start and stop ------------------------------------------

#: The last line either server logs once it has shut down.
STOPPED_MESSAGE = "Tether stopped"


def where_text(address: Any, *, tls: bool, uds: str | None = None) -> str:
    """Where a server listens, for its start-up line: a URL (``http://127.0.0.1:8000``,
    ``https://[::1]:8443``), ``unix:PATH``, or the socket's own name for anything else."""
    if uds is not None:
        return f"unix:{uds}"
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = str(address[0]), address[1]
        scheme = "https" if tls else "http"
        return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
    return str(address)


def app_label(app: Any) -> str:
    """How the start-up line names an application: its ``MODULE:APP`` spec, or for an object
    handed to a server in Python, where it was defined."""
    if isinstance(app, str):
        return app
    name = getattr(app, "__qualname__", None) or type(app).__qualname__
    return f"{getattr(app, '__module__', None) or '?'}:{name}"


def running_message(where: str, app: str, kind: str) -> str:
    """The line both servers log once serving, in the same words (uvicorn's "running on ...
    (Press CTRL+C to quit)", with the app and ``kind``: "ASGI, asyncio", "WSGI, 8 threads")."""
    return f"Tether running on {where} with {app} ({kind}; Press CTRL+C to quit)"


#: Logged after :func:`stop_message`: how to cut a graceful shutdown short.
FORCE_HINT = "a second signal forces the exit"

#: Logged (a warning) when that second signal arrives.
FORCED_EXIT = "second signal: forcing exit"


def draining_message(count: int) -> str:
    """The line a graceful shutdown logs while ``count`` connections are still open."""
    return f"waiting for {count} connection(s) to finish"


def drain_timeout_message(count: int) -> str:
    """The warning when ``--timeout-graceful-shutdown`` ends a drain with ``count`` left."""
    return f"graceful shutdown timed out; closing {count} connection(s)"


class WorkerLink:
    """What a server process tells whoever supervises it.

    Under ``--workers`` that is the supervisor, one byte a word on the ``--notify-fd`` pipe:
    ``1`` serving, ``h`` a heartbeat (at most one a second; a worker that stops sending them
    for ``--timeout-worker-healthcheck`` seconds is killed and replaced), ``r`` recycle me
    (``--limit-max-requests``: the supervisor starts the replacement first, then the worker
    is told to drain). A lone server talks to systemd instead, when ``$NOTIFY_SOCKET`` is set:
    ``READY=1`` and the watchdog.
    """

    def __init__(self, notify_fd: int | None) -> None:
        """Talk on ``notify_fd`` (a worker), or to systemd (None: a lone server)."""
        self._fd = notify_fd
        self._notifier = Notifier() if notify_fd is None else None
        self._last_beat = -1.0
        if notify_fd is not None:
            with contextlib.suppress(OSError):
                os.set_blocking(notify_fd, False)  # a full pipe must never stall a server
                # Not passed on to the app's own child processes, which would hide our exit.
                os.set_inheritable(notify_fd, False)

    @property
    def supervised(self) -> bool:
        """Whether a ``--workers`` supervisor listens (and replaces this process)."""
        return self._fd is not None

    def _say(self, word: bytes) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.write(self._fd, word)

    def serving(self) -> None:
        """The server accepts connections."""
        if self._notifier is not None:
            self._notifier.ready("serving")
        self._say(b"1")

    def heartbeat(self, now: float) -> None:
        """Call from the server's own loop tick (``now`` monotonic): proof the loop runs."""
        if self._notifier is not None:
            self._notifier.watchdog(now)
        elif now - self._last_beat >= 1.0:
            self._last_beat = now
            self._say(b"h")

    def stopping(self) -> None:
        """A graceful shutdown began: a lone server tells systemd (``STOPPING=1``); under
        ``--workers`` the supervisor speaks for the service."""
        if self._notifier is not None:
            self._notifier.stopping()

    def recycle(self) -> bool:
        """Ask to be replaced; False for a lone server (it must stop by itself)."""
        self._say(b"r")
        return self.supervised


def notify_serving(fd: int | None) -> WorkerLink:
    """Say that this server serves (see :class:`WorkerLink`); returns the link for later words."""
    link = WorkerLink(fd)
    link.serving()
    return link


# -- the application -------------------------------------------------------------------------


#: What ``import_app`` looks for, in order, when the spec names only a module.
_DEFAULT_ATTRIBUTES = ("application", "app")


def import_app(spec: str, *, app_dir: str | None = None, factory: bool = False) -> Any:
    """Import ``"module:attribute"`` (the attribute may be dotted) and return what it names.

    Without ``:attribute`` (``mysite.wsgi``, as Django's deployment docs write it) the module's
    ``application`` is used, else its ``app`` (gunicorn looks for ``application``, uvicorn users
    name theirs ``app``). The module is imported from ``app_dir`` when given, else from the
    current directory. With ``factory`` the attribute is called without arguments and its
    result returned. Whether the result is an ASGI or WSGI application is the caller's check.
    """
    module_name, sep, attr = spec.partition(":")
    if not module_name or (sep and not attr):
        raise ConfigError(f'app must be given as "MODULE:ATTRIBUTE" or "MODULE", got "{spec}"')
    if app_dir is not None:
        # First on the path, so the app comes from there even if another entry has the module.
        sys.path.insert(0, app_dir)
    elif "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, "")  # the current directory, as ``python -m`` would have it
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only a missing module named by the user is their mistake; one the app itself
        # imports is a bug in the app, and its traceback is the useful message.
        if exc.name is not None and module_name.startswith(exc.name):
            raise ConfigError(f'could not import module "{module_name}"') from None
        raise
    if not sep:
        found = [name for name in _DEFAULT_ATTRIBUTES if hasattr(module, name)]
        if not found:
            raise ConfigError(
                f'module "{module_name}" has no "application" or "app": name the app as '
                f'"{module_name}:ATTRIBUTE"'
            )
        attr = found[0]
    app: Any = module
    try:
        for part in attr.split("."):
            app = getattr(app, part)
    except AttributeError:
        raise ConfigError(f'attribute "{attr}" not found in module "{module_name}"') from None
    if factory:
        if not callable(app):
            raise ConfigError(f'"{spec}" is not callable, so it cannot be an app factory')
        app = app()
    return app


# -- TLS -------------------------------------------------------------------------------------


class SSLOptions(Protocol):
    """The ``--ssl-*`` options, as both servers' ``Config`` classes carry them."""

    @property
    def ssl_certfile(self) -> str | None:
        """The certificate chain (PEM); without it the server speaks plain HTTP."""

    @property
    def ssl_keyfile(self) -> str | None:
        """The private key (PEM), if not in the certificate file."""

    @property
    def ssl_keyfile_password(self) -> str | None:
        """The password of an encrypted private key."""

    @property
    def ssl_ca_certs(self) -> str | None:
        """Certificate authorities to verify client certificates against."""

    @property
    def ssl_cert_reqs(self) -> int:
        """Whether to ask for a client certificate: an :class:`ssl.VerifyMode` value."""

    @property
    def ssl_ciphers(self) -> str:
        """The OpenSSL cipher list; empty keeps OpenSSL's default."""

    @property
    def ssl_version(self) -> str:
        """The oldest TLS version accepted: "TLSv1.2" or "TLSv1.3"."""


def create_ssl_context(options: SSLOptions) -> ssl.SSLContext | None:
    """Build the server-side TLS context from the ``ssl_*`` options (None without a cert).

    Missing files and unusable certificates or keys raise :class:`ConfigError` naming the
    option, before any socket is bound.
    """
    if options.ssl_certfile is None:
        if options.ssl_keyfile is not None:
            raise ConfigError("--ssl-keyfile needs --ssl-certfile")
        return None
    for option, path in (
        ("--ssl-certfile", options.ssl_certfile),
        ("--ssl-keyfile", options.ssl_keyfile),
        ("--ssl-ca-certs", options.ssl_ca_certs),
    ):
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"{option}: no such file: {path}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if options.ssl_version == "TLSv1.3" else ssl.TLSVersion.TLSv1_2
    )
    try:
        context.load_cert_chain(
            options.ssl_certfile, options.ssl_keyfile, password=options.ssl_keyfile_password
        )
        if options.ssl_ca_certs is not None:
            context.load_verify_locations(options.ssl_ca_certs)
        context.verify_mode = ssl.VerifyMode(options.ssl_cert_reqs)
        if options.ssl_ciphers:
            context.set_ciphers(options.ssl_ciphers)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(f"could not load the TLS certificate or key: {exc}") from None
    context.set_alpn_protocols(["http/1.1"])
    return context


__all__ = [
    "FORCED_EXIT",
    "FORCE_HINT",
    "LOG_LEVELS",
    "STOPPED_MESSAGE",
    "STOP_SIGNALS",
    "ConfigError",
    "SSLOptions",
    "_optional_seconds",
    "_positive_int",
    "_seconds",
    "add_binding_options",
    "add_limit_options",
    "add_logging_options",
    "add_tls_options",
    "add_websocket_options",
    "app_label",
    "configure_logging",
    "create_ssl_context",
    "drain_timeout_message",
    "draining_message",
    "import_app",
    "running_message",
    "stop_message",
    "where_text",
]
