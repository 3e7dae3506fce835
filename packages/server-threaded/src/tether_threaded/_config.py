"""Server configuration: one dataclass, plus loading the application.

Option names and meanings follow ``tether serve`` (and so uvicorn). Every failure a user can
cause here (a bad ``MODULE:APP``, a port in use, a missing certificate) raises
:class:`ConfigError` with one clear line; the command line prints it and exits non-zero.
Importing ``MODULE:APP``, the TLS context and :class:`ConfigError` itself are the core's
(:mod:`tether_server.startup`), shared with ``tether serve``; what makes a WSGI application and the
listening socket are this server's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tether.serving_wsgi import WSGIApp
from tether_server.binding import bind_socket
from tether_server.config import ServerConfig
from tether_server.startup import ConfigError, create_ssl_context, import_app

#: Requests that may wait for a worker when ``limit_concurrency`` is not set.
DEFAULT_QUEUE = 1024


@dataclass(kw_only=True)
class Config(ServerConfig):
    """Everything that shapes one server run: the options both servers share
    (:class:`~tether_server.config.ServerConfig`), plus the worker threads and their limits."""

    #: Worker threads running the application.
    threads: int = 8
    #: Most WebSocket sessions at once, each on a thread of its own outside the worker pool;
    #: further upgrades are answered 503.
    limit_websockets: int = 64
    #: Largest body the loop gathers (spooling it to disk) when ``max_body_size`` is not set;
    #: 413 beyond, so that no client can fill the disk (waitress's default, 1 GiB).
    max_gathered_body: int = 1 << 30
    #: Most bytes of gathered bodies spooled to disk at once, over all requests (None: no
    #: limit, as in waitress); an upload past it is answered 413 with Retry-After, so that many
    #: clients uploading at once cannot fill the disk (:class:`tether_server.wsgi_body.SpoolBudget`).
    limit_spool: int | None = 4 << 30
    #: On an application error, send the traceback in the 500's body (waitress's
    #: ``expose_tracebacks``; for development only: it shows the code to any client).
    expose_tracebacks: bool = False
    #: ``"gather"``: the loop reads each request body whole (memory, then a temporary file)
    #: before the application runs, and sets ``CONTENT_LENGTH`` (waitress). ``"stream"``: the
    #: application runs at the head and reads the body as it comes (gunicorn); a worker then
    #: waits on its client, for at most ``timeout_body`` per stall.
    request_body: Literal["gather", "stream"] = "gather"
    #: Other processes serve the same application (a worker of ``--workers N``, N > 1): the
    #: environ's ``wsgi.multiprocess``.
    multiprocess: bool = False

    def body_cap(self) -> int | None:
        """The most body bytes one request may bring: ``max_body_size``, else (when the loop
        gathers bodies, spooling them to disk) ``max_gathered_body``."""
        if self.max_body_size is not None or self.request_body == "stream":
            return self.max_body_size
        return self.max_gathered_body

    def max_in_flight(self) -> int:
        """Requests admitted at once before the loop answers 503 (``limit_concurrency``, else
        :data:`DEFAULT_QUEUE` plus one per thread)."""
        if self.limit_concurrency is not None:
            return self.limit_concurrency
        return self.threads + DEFAULT_QUEUE


def load_app(spec: str, app_dir: str | None = None, factory: bool = False) -> WSGIApp:
    """Import ``"module:attribute"`` (the attribute may be dotted) and return the WSGI app.

    With ``factory`` the attribute is called without arguments to make the app.
    """
    app = import_app(spec, app_dir=app_dir, factory=factory)
    if not callable(app):
        raise ConfigError(f'"{spec}" is not a WSGI application (not callable)')
    return app  # type: ignore[no-any-return]


__all__ = ["Config", "ConfigError", "bind_socket", "create_ssl_context", "load_app"]
