"""The public server object: bind, serve in this thread or a background one, shut down."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from tether.serving_wsgi import WSGIApp
from tether_server.logfiles import REOPEN_SIGNAL, install_reopen_handler
from tether_server.server_metrics import Exporter
from tether_server.startup import (
    COUNT_SIGNALS,
    STOP_SIGNALS,
    forces_stop,
    on_count_signal,
    on_stop_signal,
    where_text,
)
from tether_server.stopping import StopWatchdog
from tether_threaded._config import Config, bind_socket, create_ssl_context
from tether_threaded._loop import Loop

_log = logging.getLogger("tether.error")


class Server:
    """A WSGI server: one selectors loop thread plus ``config.threads`` worker threads.

    ``serve()`` runs the loop in the calling thread until SIGINT/SIGTERM (or :meth:`shutdown`);
    ``start()`` runs it in a background thread and returns (tests, embedding)::

        server = Server(app, Config(port=0, threads=4))
        server.start()
        host, port = server.address
        ...
        server.shutdown()

    Shutdown is graceful, as in ``tether serve``: requests in flight get up to
    ``timeout_graceful_shutdown`` seconds (a second signal or call cuts it short).
    """

    def __init__(self, app: WSGIApp, config: Config | None = None, **options: Any) -> None:
        if config is not None and options:
            raise TypeError("give either a Config or keyword options, not both")
        self.app = app
        self.config = config if config is not None else Config(**options)
        self._loop: Loop | None = None
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._exporter: Exporter | None = None

    def on_tick(self, heartbeat: Callable[[float], None]) -> None:
        """Call ``heartbeat(now)`` on every pass of the loop (after :meth:`bind`): how a worker
        tells its supervisor that the loop still runs."""
        assert self._loop is not None, "bind() first"
        self._loop.heartbeat = heartbeat

    def on_stopping(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once a graceful shutdown begins (after :meth:`bind`)."""
        assert self._loop is not None, "bind() first"
        self._loop.on_stopping = callback

    def bind(self) -> None:
        """Create the TLS context and the listening socket (raises ConfigError)."""
        if self._loop is not None:
            return
        self.config.trusted_proxies()  # a bad --forwarded-allow-ips fails here, before binding
        ssl_context = create_ssl_context(self.config)
        sock = bind_socket(self.config)
        try:
            self._loop = Loop(self.app, self.config, [sock], ssl_context)
            self._exporter = self.config.metrics_exporter()  # --metrics-port
        except BaseException:
            sock.close()
            if self.config.uds is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self.config.uds)
            raise
        self._sock = sock

    @property
    def address(self) -> Any:
        """The bound address: ``(host, port)`` (IPv6: 4-tuple), or the Unix socket path."""
        if self._sock is None:
            raise RuntimeError("the server is not bound yet")
        return self._sock.getsockname()

    def url(self) -> str:
        """The base URL of the server (``http://host:port`` or ``https://``)."""
        tls = bool(self.config.ssl_certfile)
        if self.config.uds is not None:
            return "https://localhost" if tls else "http://localhost"
        return where_text(self.address, tls=tls)

    def serve(self, on_serving: Callable[[], None] | None = None) -> None:
        """Serve in the calling thread until shut down; ``on_serving()`` is called once the
        signal handlers are in place (so a signal sent on seeing its start-up line is handled)."""
        self.bind()
        loop = self._loop
        assert loop is not None
        restore: dict[signal.Signals, Any] = {}
        # No bound without handlers (nothing stops on a signal), nor for a worker (its
        # supervisor kills it).
        watchdog = StopWatchdog(None)
        if (
            self.config.install_signal_handlers
            and threading.current_thread() is threading.main_thread()
        ):
            signalled: list[int] = []
            if self.config.notify_fd is None:
                # The loop thread can be blocked too (a log handler stuck on its sink): a lone
                # server ends itself once a stop has run past the grace + STOP_SLACK.
                watchdog = StopWatchdog(self.config.timeout_graceful_shutdown)

            def on_signal(signum: int, frame: FrameType | None) -> None:
                watchdog.arm(signum)  # first: what follows may block
                # Counted first: a Python handler runs between bytecodes, so a second signal
                # can interrupt this one while it logs, and it must know it is the second.
                signalled.append(signum)
                first = len(signalled) == 1
                handover = on_stop_signal(signum, first=first)
                if first:
                    loop.handover = handover
                loop.request_shutdown()
                if first and forces_stop(signum, first=True):
                    loop.request_shutdown()  # SIGQUIT: begun and forced at once

            for signum in STOP_SIGNALS:
                restore[signum] = signal.signal(signum, on_signal)
            for signum in COUNT_SIGNALS:  # not a supervisor: said, and ignored
                restore[signum] = signal.signal(
                    signum, lambda signum, frame: on_count_signal(signum)
                )
            restore[REOPEN_SIGNAL] = install_reopen_handler()
        if self._exporter is not None:
            self._exporter.start()
        try:
            if on_serving is not None:
                on_serving()
            loop.run()
        finally:
            watchdog.disarm()
            if self._exporter is not None:
                self._exporter.close()
            for signum, handler in restore.items():
                signal.signal(signum, handler)
            if self.config.uds is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self.config.uds)

    def start(self) -> None:
        """Bind, then serve in a background thread."""
        self.bind()
        self._thread = threading.Thread(target=self.serve, name="tether-loop", daemon=True)
        self._thread.start()

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Begin a graceful shutdown (thread-safe); wait for a background loop to end."""
        if self._loop is not None:
            self._loop.request_shutdown()
        if wait and self._thread is not None:
            self._thread.join(timeout)


def serve(app: WSGIApp, **options: Any) -> None:
    """Serve ``app`` with :class:`Config` options until SIGINT/SIGTERM."""
    Server(app, **options).serve()


__all__ = ["Server", "serve"]
