"""Start-up helpers shared by both servers, run once before serving.

``tether serve`` (the ASGI server) and ``tether-threaded`` (the WSGI server) read the same
options, import an application the same way and build the same TLS context; that glue lives
here, once, so the two command lines cannot drift apart:

- The option groups both command lines share (and :class:`ConfigError`, the one error for a
  configuration problem the user must fix) are :mod:`tether_server.options`;
  :mod:`tether_server.config` gathers them (and reads them back for a server's ``Config``).
- :func:`configure_logging` sends the ``tether.*`` logs to stderr at ``--log-level``.
- :func:`import_app` resolves ``MODULE:APP``; each server then checks that the result is a
  valid ASGI or WSGI application.
- The server-side TLS context is :mod:`tether_server.tls`'s ``create_ssl_context``.
- :func:`trusted_proxies` reads ``--proxy-headers`` and ``--forwarded-allow-ips``.
- :func:`add_process_options` and :func:`supervise` give ``--workers`` and ``--reload``
  (the supervisor itself is :mod:`tether_server.supervisor`); :func:`notify_serving` is a worker's
  side of it; :data:`STOP_SIGNALS` and :func:`on_stop_signal` (from
  :mod:`tether_server.stopping`) say how either server reacts to a stop signal.

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
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tether.serving import TrustedProxies
from tether_server.binding import refuse_new_connections
from tether_server.logline import LineHandler
from tether_server.option_types import _optional_seconds, _positive_int, _seconds
from tether_server.options import (
    LOG_LEVELS,
    ConfigError,
    add_binding_options,
    add_limit_options,
    add_logging_options,
    add_tls_options,
    add_websocket_options,
)
from tether_server.stopping import (
    FORCE_HINT,
    FORCED_EXIT,
    QUICK_STOP_SIGNAL,
    STOP_SIGNALS,
    forces_stop,
    mark_supervised,
    on_stop_signal,
    stop_message,
    supervised,
)
from tether_server.systemd import Notifier
from tether_server.tls import SSLOptions, create_ssl_context

if TYPE_CHECKING:
    from tether_server.server_metrics import SupervisorMetrics


def configure_logging(level: str, log_format: str = "text") -> None:
    """Send ``tether.*`` logs to stderr at ``level`` (one of :data:`LOG_LEVELS`), as text lines
    or, with ``log_format="json"``, one JSON object per line (a ``--log-config`` file, applied
    by :func:`apply_process_options`, may change any of it)."""
    numeric = logging.DEBUG if level == "trace" else getattr(logging, level.upper())
    # Text or JSON lines; access lines skip the log record (tether_server.logline).
    handler = LineHandler(sys.stderr, json=log_format == "json")
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
    (workers inherit the environment, and the open-file limit). Raises :class:`ConfigError` for
    a bad file."""
    load_env_file(args.env_file)
    if args.log_config is not None:
        _apply_log_config(args.log_config)
    raise_open_file_limit()


def raise_open_file_limit() -> tuple[int, int] | None:
    """Raise this process's soft limit on open files to its hard limit; (before, after), or None
    when nothing changed.

    Each connection holds a descriptor, and the usual soft limit (1024: systemd's default for
    services, most shells') would stop a server at about a thousand clients while the hard limit
    allows far more. systemd's documentation of ``LimitNOFILE=`` asks programs that need many
    descriptors to raise the soft limit to the hard one themselves, as Go's runtime does; both
    servers wait on epoll, never ``select()``, so descriptors past 1024 are safe for them. An
    operator's bound stays a bound: the hard limit (``LimitNOFILE=N``, ``ulimit -n N``) is never
    passed.
    """
    try:
        import resource
    except ImportError:  # not a Unix
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # No hard bound (RLIM_INFINITY, macOS): ask for a large number the kernel may yet refuse.
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= target:
        return None
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return None
    logging.getLogger("tether.error").debug(
        "raised the limit on open files from %d to %d (the hard limit)", soft, target
    )
    return soft, target


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
        from tether_server.stopping import watch_supervisor

        mark_supervised()
        watch_supervisor(args.supervisor_fd, args.timeout_graceful_shutdown)
    if args.workers == 1 and not args.reload:
        return None
    from tether_server.supervisor import Supervisor

    worker = [*command, "--workers", "1", "--no-reload"]
    if args.workers > 1:
        worker.append("--multiprocess")
    dirs = (args.reload_dir or [args.app_dir or os.getcwd()]) if args.reload else None
    sock = bind()

    def close_listener() -> None:
        # At a stop: new connections are refused, then the workers take what is queued.
        refuse_new_connections(sock)
        sock.close()

    try:
        return Supervisor(
            worker,
            args.workers,
            reload_dirs=dirs,
            reload_include=args.reload_include or (),
            reload_exclude=args.reload_exclude or (),
            healthcheck_timeout=args.timeout_worker_healthcheck or None,
            graceful_timeout=args.timeout_graceful_shutdown,
            metrics=metrics,
        ).run(sock.fileno(), close_listener=close_listener)
    finally:
        sock.close()


#: The signals a --workers supervisor adds and removes a worker on (gunicorn's): a server
#: process on its own logs them and goes on, where their default action would stop it (the
#: process would then answer nothing until SIGCONT).
COUNT_SIGNALS = (signal.SIGTTIN, signal.SIGTTOU)


def on_count_signal(signum: int) -> None:
    """What a :data:`COUNT_SIGNALS` signal means to a server process (not a supervisor):
    nothing, said in the log."""
    name = signal.Signals(signum).name
    where = "send it to the supervisor" if supervised() else "run with --workers"
    logging.getLogger("tether.error").warning(
        "%s received: ignored (to add or remove a worker, %s)", name, where
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


def draining_message(count: int) -> str:
    """The line a graceful shutdown logs while ``count`` connections are still open."""
    return f"waiting for {count} connection(s) to finish"


def drain_timeout_message(count: int) -> str:
    """The warning when ``--timeout-graceful-shutdown`` ends a drain with ``count`` left."""
    return f"graceful shutdown timed out; closing {count} connection(s)"


#: Seconds between a worker's heartbeats, at least: well under the shortest sensible
#: --timeout-worker-healthcheck (beats a second apart, plus a loop's tick, let a healthy worker
#: fall silent for a little over a second, and a 1 s check killed it).
HEARTBEAT = 0.25


class WorkerLink:
    """What a server process tells whoever supervises it.

    Under ``--workers`` that is the supervisor, one byte a word on the ``--notify-fd`` pipe:
    ``1`` serving, ``h`` a heartbeat (at most one every :data:`HEARTBEAT` seconds; a worker
    that stops sending them for ``--timeout-worker-healthcheck`` seconds is killed and
    replaced), ``r`` recycle me
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
        elif now - self._last_beat >= HEARTBEAT:
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


__all__ = [
    "COUNT_SIGNALS",
    "FORCED_EXIT",
    "FORCE_HINT",
    "LOG_LEVELS",
    "QUICK_STOP_SIGNAL",
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
    "forces_stop",
    "import_app",
    "on_count_signal",
    "on_stop_signal",
    "running_message",
    "stop_message",
    "where_text",
]
