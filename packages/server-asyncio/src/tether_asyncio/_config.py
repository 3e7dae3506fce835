"""Server configuration: one dataclass, plus loading the application, the TLS context and sockets.

Every failure a user can cause here (a bad ``MODULE:APP``, a port in use, a missing certificate)
raises :class:`ConfigError` with one clear line; the command line prints it and exits non-zero.
Importing ``MODULE:APP``, the TLS context and :class:`ConfigError` itself are the core's
(:mod:`tether_server.startup`), shared with the threaded server; what makes an ASGI application and
the listening socket are this server's.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Literal

from tether_asyncio._types import ASGIApp
from tether_server.binding import bind_socket
from tether_server.config import ServerConfig
from tether_server.startup import ConfigError, create_ssl_context, import_app


@dataclass(kw_only=True)
class Config(ServerConfig):
    """Everything that shapes one server run: the options both servers share
    (:class:`~tether_server.config.ServerConfig`), plus the ASGI server's own. Field names
    follow uvicorn's options; ``app`` is the one positional argument."""

    app: ASGIApp | str = field(kw_only=False)
    #: "asyncio" or "trio".
    backend: Literal["asyncio", "trio"] = "asyncio"
    #: asyncio event loop: "auto" (uvloop if installed), "asyncio" or "uvloop".
    loop: Literal["auto", "asyncio", "uvloop"] = "asyncio"
    #: "auto": run the lifespan protocol, ignore apps that do not support it; "on": require it.
    lifespan: Literal["auto", "on", "off"] = "auto"
    #: "auto" serves WebSocket upgrades; "none" refuses them.
    ws: Literal["auto", "none"] = "auto"
    ws_per_message_deflate: bool = True
    factory: bool = False
    #: "auto" (ASGI 3, or ASGI 2 recognised as uvicorn does), "asgi3" or "asgi2".
    interface: Literal["auto", "asgi3", "asgi2"] = "auto"
    app_dir: str | None = None
    extra_headers: list[tuple[bytes, bytes]] = field(default_factory=list)

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
