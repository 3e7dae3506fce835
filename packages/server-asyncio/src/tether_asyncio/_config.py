"""Server configuration: one dataclass, plus loading the application, the TLS context and sockets.

Every failure a user can cause here (a bad ``MODULE:APP``, a port in use, a missing certificate)
raises :class:`ConfigError` with one clear line; the command line prints it and exits non-zero.
Importing ``MODULE:APP``, the TLS context and :class:`ConfigError` itself are the core's
(:mod:`tether_server.startup`), shared with the threaded server; what makes an ASGI application and
the listening socket are this server's.
"""

from __future__ import annotations

import inspect
import ssl
from dataclasses import dataclass, field
from typing import Any, Literal

from tether.limits import Limits
from tether.serving import SERVER_HEADER, TrustedProxies, server_limits
from tether_asyncio._types import ASGIApp
from tether_server.binding import bind_socket
from tether_server.startup import ConfigError, create_ssl_context, import_app, trusted_proxies


@dataclass
class Config:
    """Everything that shapes one server run. Field names follow uvicorn's options."""

    app: ASGIApp | str
    host: str = "127.0.0.1"
    port: int = 8000
    uds: str | None = None
    fd: int | None = None
    backlog: int = 2048
    #: "asyncio" or "trio".
    backend: Literal["asyncio", "trio"] = "asyncio"
    #: asyncio event loop: "auto" (uvloop if installed), "asyncio" or "uvloop".
    loop: Literal["auto", "asyncio", "uvloop"] = "asyncio"
    #: "auto": run the lifespan protocol, ignore apps that do not support it; "on": require it.
    lifespan: Literal["auto", "on", "off"] = "auto"
    #: "auto" serves WebSocket upgrades; "none" refuses them.
    ws: Literal["auto", "none"] = "auto"
    ws_per_message_deflate: bool = True
    root_path: str = ""
    limit_concurrency: int | None = None
    limit_connections: int | None = None
    limit_connections_low: int | None = None
    limit_requests_per_connection: int | None = None
    #: Answer ``PREFIX/live``, ``/ready`` and ``/startup`` before the app (None: off).
    health_path_prefix: str | None = None
    timeout_keep_alive: float = 5.0
    timeout_request_head: float = 10.0
    timeout_body: float = 30.0
    #: Bytes per second a request body must average after ``timeout_body`` seconds (0: none).
    min_body_rate: int = 500
    #: Seconds a response or WebSocket may wait on a client that does not read.
    timeout_write: float = 60.0
    timeout_graceful_shutdown: float | None = 30.0
    timeout_tls_handshake: float = 10.0
    ws_max_size: int = 16 * 1024 * 1024
    ws_ping_interval: float | None = 20.0
    ws_ping_timeout: float = 20.0
    ws_close_timeout: float = 10.0
    #: Largest request head (uvicorn's ``--h11-max-incomplete-event-size``).
    max_head_size: int = 64 * 1024
    max_body_size: int | None = None
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
    factory: bool = False
    #: "auto" (ASGI 3, or ASGI 2 recognised as uvicorn does), "asgi3" or "asgi2".
    interface: Literal["auto", "asgi3", "asgi2"] = "auto"
    app_dir: str | None = None
    #: Install SIGINT/SIGTERM handlers (only possible in the main thread).
    install_signal_handlers: bool = True
    #: Write one byte to this file descriptor once serving (how a ``--workers`` worker tells
    #: the supervisor that it started), then close it.
    notify_fd: int | None = None
    extra_headers: list[tuple[bytes, bytes]] = field(default_factory=list)

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
            max_requests=self.limit_requests_per_connection,
        )

    def trusted_proxies(self) -> TrustedProxies | None:
        """The peers whose proxy headers are believed (None: ``proxy_headers`` is off)."""
        return trusted_proxies(
            self.proxy_headers, self.forwarded_allow_ips, forwarded_style=self.forwarded_style
        )

    def server_header_pair(self) -> tuple[bytes, bytes] | None:
        """The ``Server`` header to add, or None."""
        return SERVER_HEADER if self.server_header else None

    @property
    def is_ssl(self) -> bool:
        """Whether connections are TLS."""
        return self.ssl_certfile is not None


def load_app(config: Config) -> ASGIApp:
    """Resolve ``config.app`` (an app object or ``"module:attribute"``) to an ASGI 3 callable.

    An ASGI 2 application (``app(scope)`` returning ``instance(receive, send)``; a class is the
    usual form) is wrapped so that the server only ever calls ASGI 3: with ``interface="auto"``
    it is recognised as uvicorn recognises it (a class, or a callable that is not a coroutine
    function and takes one argument).
    """
    app: Any = config.app
    spec = app if isinstance(app, str) else repr(app)
    if isinstance(app, str):
        app = import_app(app, app_dir=config.app_dir, factory=config.factory)
        if not callable(app):
            raise ConfigError(f'"{spec}" is not an ASGI application (not callable)')
    interface = config.interface
    if interface == "auto":
        interface = "asgi2" if _looks_asgi2(app) else "asgi3"
    if interface == "asgi2":
        if _positional_arity(app) not in (None, 1) and not inspect.isclass(app):
            raise ConfigError(f'"{spec}" is not an ASGI 2 application (expected app(scope))')
        return _asgi2_adapter(app)
    if isinstance(config.app, str) and (
        inspect.isclass(app) or _positional_arity(app) not in (None, 3)
    ):
        raise ConfigError(
            f'"{spec}" is not an ASGI 3 application (expected app(scope, receive, send))'
        )
    return app  # type: ignore[no-any-return]


def _looks_asgi2(app: Any) -> bool:
    if inspect.isclass(app):
        return True
    if not callable(app):
        return False
    target = app if inspect.isfunction(app) or inspect.ismethod(app) else app.__call__
    return not inspect.iscoroutinefunction(target) and _positional_arity(app) == 1


def _asgi2_adapter(app: Any) -> ASGIApp:
    """ASGI 3 around an ASGI 2 application: ``app(scope)`` then ``instance(receive, send)``."""

    async def asgi3(scope: Any, receive: Any, send: Any) -> None:
        instance = app(scope)
        await instance(receive, send)

    return asgi3


def _positional_arity(app: Any) -> int | None:
    target = app if inspect.isfunction(app) or inspect.ismethod(app) else app.__call__
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    count = 0
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            return None
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            count += 1
    return count


__all__ = ["Config", "ConfigError", "bind_socket", "create_ssl_context", "load_app"]
