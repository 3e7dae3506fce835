"""Server configuration: one dataclass, plus loading the application, TLS and listening sockets.

Option names and meanings follow ``tether serve`` (and so uvicorn). Every failure a user can
cause here (a bad ``MODULE:APP``, a port in use, a missing certificate) raises
:class:`ConfigError` with one clear line; the command line prints it and exits non-zero.
Importing ``MODULE:APP``, the TLS context and :class:`ConfigError` itself are the core's
(:mod:`tether_server.startup`), shared with ``tether serve``; what makes a WSGI application and the
listening socket are this server's.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from tether.limits import Limits
from tether.serving import SERVER_HEADER, TrustedProxies, server_limits
from tether_server.binding import bind_socket
from tether_server.startup import ConfigError, create_ssl_context, import_app, trusted_proxies
from tether_threaded._types import WSGIApp

#: Requests that may wait for a worker when ``limit_concurrency`` is not set.
DEFAULT_QUEUE = 1024


@dataclass
class Config:
    """Everything that shapes one server run."""

    host: str = "127.0.0.1"
    port: int = 8000
    uds: str | None = None
    fd: int | None = None
    backlog: int = 2048
    #: Worker threads running the application.
    threads: int = 8
    #: Most requests admitted at once (running plus waiting for a worker); beyond it the loop
    #: answers 503 itself. ``None``: :data:`DEFAULT_QUEUE` plus one per thread.
    limit_concurrency: int | None = None
    #: Most WebSocket sessions at once, each on a thread of its own outside the worker pool;
    #: further upgrades are answered 503.
    limit_websockets: int = 64
    #: Most open connections; at the limit the server stops accepting until some close.
    limit_connections: int | None = None
    #: Resume accepting at this many open connections (default: 90% of the limit).
    limit_connections_low: int | None = None
    limit_max_requests: int | None = None
    root_path: str = ""
    #: Answer ``PREFIX/live``, ``/ready`` and ``/startup`` before the app (None: off).
    health_path_prefix: str | None = None
    timeout_keep_alive: float = 5.0
    timeout_request_head: float = 10.0
    timeout_body: float = 30.0
    #: Bytes per second a request body must average after ``timeout_body`` seconds (0: none).
    min_body_rate: int = 500
    #: Seconds a response may make no progress towards a client that does not read.
    timeout_write: float = 60.0
    timeout_tls_handshake: float = 10.0
    #: Seconds in-flight requests get to finish after SIGINT/SIGTERM; ``None`` waits for them.
    timeout_graceful_shutdown: float | None = 30.0
    max_head_size: int = 64 * 1024
    max_body_size: int | None = None
    #: Largest body the loop gathers (spooling it to disk) when ``max_body_size`` is not set;
    #: 413 beyond, so that no client can fill the disk (waitress's default, 1 GiB).
    max_gathered_body: int = 1 << 30
    ws_max_size: int = 16 * 1024 * 1024
    ws_ping_interval: float | None = 20.0
    ws_ping_timeout: float = 20.0
    ws_close_timeout: float = 10.0
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
    #: Believe X-Forwarded-For and X-Forwarded-Proto from the peers in ``forwarded_allow_ips``.
    proxy_headers: bool = True
    #: Comma-separated IPs, CIDR networks, "unix" or "*"; None: $FORWARDED_ALLOW_IPS or 127.0.0.1.
    forwarded_allow_ips: str | None = None
    #: "x-forwarded" (X-Forwarded-For/-Proto) or "rfc7239" (Forwarded).
    forwarded_style: str = "x-forwarded"
    #: Install SIGINT/SIGTERM handlers (only possible in the main thread).
    install_signal_handlers: bool = True

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
            max_requests=self.limit_max_requests,
        )

    def body_cap(self) -> int:
        """The most body bytes one request may bring (the loop gathers them all)."""
        if self.max_body_size is not None:
            return self.max_body_size
        return self.max_gathered_body

    def max_in_flight(self) -> int:
        """Requests admitted at once before the loop answers 503."""
        if self.limit_concurrency is not None:
            return self.limit_concurrency
        return self.threads + DEFAULT_QUEUE

    def trusted_proxies(self) -> TrustedProxies | None:
        """The peers whose proxy headers are believed (None: ``proxy_headers`` is off)."""
        return trusted_proxies(
            self.proxy_headers, self.forwarded_allow_ips, forwarded_style=self.forwarded_style
        )

    def server_header_pair(self) -> tuple[bytes, bytes] | None:
        """The ``Server`` header to add, or None."""
        return SERVER_HEADER if self.server_header else None


def load_app(spec: str, app_dir: str | None = None, factory: bool = False) -> WSGIApp:
    """Import ``"module:attribute"`` (the attribute may be dotted) and return the WSGI app.

    With ``factory`` the attribute is called without arguments to make the app.
    """
    app = import_app(spec, app_dir=app_dir, factory=factory)
    if not callable(app):
        raise ConfigError(f'"{spec}" is not a WSGI application (not callable)')
    return app  # type: ignore[no-any-return]



__all__ = ["Config", "ConfigError", "bind_socket", "create_ssl_context", "load_app"]
