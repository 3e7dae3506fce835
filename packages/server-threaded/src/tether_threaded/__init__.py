"""tether-threaded: the Tether reference WSGI server (PEP 3333) on a selectors loop.

One thread runs a ``selectors`` loop that owns every socket (accept, read, write, timers); a
bounded pool of worker threads runs the application. Parsing, framing, keep-alive, limits and
timeouts are the Tether core's (:mod:`tether.http1`, :mod:`tether.websocket`).

- :class:`Server` / :func:`serve` with :class:`Config` (the options of ``tether-threaded``).
- :class:`FileWrapper` is ``wsgi.file_wrapper`` (``os.sendfile`` on plain sockets).
- WebSocket: ``environ["tether.websocket"].accept()`` gives a blocking :class:`WebSocket`
  (``receive``/``send``/``close``); :func:`websocket_app` wraps a ``handler(ws)``.
- :class:`ClientDisconnected` (an ``OSError``) is what ``wsgi.input`` reads and response writes
  raise when the client went away.
"""

from tether.serving_wsgi import FileWrapper
from tether_threaded._config import Config, ConfigError
from tether_threaded._input import ClientDisconnected
from tether_threaded._server import Server, serve
from tether_threaded._websocket import Upgrade, WebSocket, WebSocketClosed, websocket_app

__all__ = [
    "ClientDisconnected",
    "Config",
    "ConfigError",
    "FileWrapper",
    "Server",
    "Upgrade",
    "WebSocket",
    "WebSocketClosed",
    "serve",
    "websocket_app",
]
