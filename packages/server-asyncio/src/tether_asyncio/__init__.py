"""The Tether reference ASGI server: the sans-I/O Tether core bound to anyio sockets.

Runs on asyncio (uvloop when installed and asked for) and on trio. Every HTTP and WebSocket
decision is the core's (:mod:`tether.http1`, :mod:`tether.websocket`); this package moves bytes,
time and ASGI messages.

From the command line: ``tether serve MODULE:APP`` (``tether serve --help``). From Python::

    from tether_asyncio import Config, Server, run

    run("myproject.main:app", port=8000)            # blocks; returns the exit status
    Server(Config(app=app, backend="trio")).run()
"""

from tether_asyncio._config import Config, ConfigError
from tether_asyncio._server import Server, run
from tether_asyncio._types import ClientDisconnected

__version__ = "0.1.0"

__all__ = ["ClientDisconnected", "Config", "ConfigError", "Server", "__version__", "run"]
