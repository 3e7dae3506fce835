"""Tether: a strict, fast, typed sans-I/O HTTP/1.1 and WebSocket protocol core.

Submodules, one per concern: :mod:`tether.http1` (connections), :mod:`tether.errors`,
:mod:`tether.limits`, and the body toolkit and WebSocket modules beside them.
"""

from tether.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from tether.limits import Limits

__version__ = "0.1.0"

__all__ = ["Limits", "LocalProtocolError", "ProtocolError", "RemoteProtocolError", "__version__"]
