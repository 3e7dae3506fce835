"""Static files as a WSGI app, for any WSGI server (``tether-threaded --static PREFIX=DIR`` uses it).

:class:`StaticFiles` asks :class:`tether_server.static.StaticFiles` (its base) what to answer and
sends it: the whole file through ``environ["wsgi.file_wrapper"]`` (tether-threaded sends it with
``os.sendfile``), ranges and multipart/byteranges from a reader of the open file.

:func:`with_static` puts mounts in front of an app: a request under a mount's prefix is the
mount's and never reaches the app. The path served is ``PATH_INFO``; ``SCRIPT_NAME`` is where the
mount sits (for the 307 to a directory's slash form).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from tether.http1 import reason_phrase
from tether.serving_wsgi import Environ, StartResponse, WSGIApp
from tether_server import static
from tether_server.static import REQUEST_FIELDS, Body, StaticMount, StaticResponse, mount_rest

__all__ = ["StaticFiles", "with_static"]

#: The environ keys of the request fields the decision reads.
_KEYS = tuple(
    (name, "HTTP_" + name.decode("latin-1").upper().replace("-", "_")) for name in REQUEST_FIELDS
)


class StaticFiles(static.StaticFiles):
    """A WSGI app serving the files under ``directory`` (arguments as the base class's)."""

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Answer one request."""
        method = environ.get("REQUEST_METHOD", "GET").encode("latin-1")
        headers = [(name, environ[key].encode("latin-1")) for name, key in _KEYS if key in environ]
        base = _text(environ.get("SCRIPT_NAME", ""))
        path = _text(environ.get("PATH_INFO", ""))
        query = environ.get("QUERY_STRING", "").encode("latin-1")
        if path is None or base is None:  # not UTF-8: no file has that name here
            path, base = "\x00", ""
        response = self.respond(method, path, headers, base=base, query=query)
        status = response.status
        start_response(
            f"{status} {reason_phrase(status)}",
            [(name.decode("latin-1"), value.decode("latin-1")) for name, value in response.headers],
        )
        if response.body is Body.TEXT:
            return [response.text]
        if response.body is Body.FILE and response.file is not None:
            wrapper = environ.get("wsgi.file_wrapper")
            if wrapper is not None:
                return wrapper(response.file, self.chunk_size)  # type: ignore[no-any-return]
        if response.file is None:
            return []
        return _Chunks(response, self.chunk_size)


class _Chunks:
    """The body read from the open file; ``close()`` (PEP 3333 calls it) closes the file."""

    def __init__(self, response: StaticResponse, chunk_size: int) -> None:
        self.response = response
        self.chunk_size = chunk_size

    def __iter__(self) -> Iterator[bytes]:
        return self.response.chunks(self.chunk_size)

    def close(self) -> None:
        self.response.close()


def _text(value: str) -> str | None:
    """A WSGI path (bytes as latin-1 characters, PEP 3333) as the UTF-8 text it encodes."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return None


def with_static(app: WSGIApp, mounts: Sequence[StaticMount | tuple[str, StaticFiles]]) -> WSGIApp:
    """``app`` behind the static ``mounts``: ``StaticMount(prefix, directory)`` (what
    ``--static`` gives) or ``(prefix, StaticFiles(...))`` pairs; the first matching prefix wins."""
    # Prefixes are text; PATH_INFO is latin-1-decoded bytes: compare in the same terms.
    table = [
        (prefix.encode("utf-8").decode("latin-1"), files)
        for prefix, files in static.mount_table(mounts, StaticFiles)
    ]

    def mounted(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path_info: str = environ.get("PATH_INFO", "")
        for prefix, files in table:
            rest = mount_rest(prefix, path_info)
            if rest is not None:
                inner = dict(environ)
                inner["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                inner["PATH_INFO"] = rest
                return files(inner, start_response)
        return app(environ, start_response)

    return mounted
