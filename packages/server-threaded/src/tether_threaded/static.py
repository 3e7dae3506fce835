"""Static files as a WSGI app: :mod:`tether_server.static_wsgi`, for any WSGI server."""

from tether_server.static_wsgi import StaticFiles, with_static

__all__ = ["StaticFiles", "with_static"]
