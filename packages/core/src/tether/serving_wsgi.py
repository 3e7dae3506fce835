"""The WSGI (PEP 3333) side of serving, written once for any WSGI server (sans I/O).

A WSGI server turns a parsed :class:`~tether.http1.Request` into an environ and the
application's ``start_response`` calls into a :class:`~tether.serving_cycle.ResponseCycle`;
both are rules of the PEP, not of a server's sockets, so they live here:

- the callable types (:data:`WSGIApp`, :class:`StartResponse`, :data:`Environ`, ...);
- :func:`server_environ` (what every request of one listener shares) and :func:`request_environ`
  (the CGI variables and ``HTTP_*`` keys of one request);
- :func:`start_response` (status and header checks, ``exc_info``, hop-by-hop fields);
- :class:`FileWrapper` (``wsgi.file_wrapper``), :data:`NO_BODY` (``wsgi.input`` of a request
  without a body), :func:`gathered_body`, :func:`close_result` and :func:`traceback_response`.

Tables here are fixed at import and only looked up, never filled from requests: no byte a client
sent is remembered for the next one.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from http import HTTPStatus
from operator import itemgetter, methodcaller
from types import TracebackType
from typing import IO, Any, Protocol

from tether.http1 import Headers, Request, Response
from tether.serving import split_target, unquote_path
from tether.serving_cycle import CyclePhase, ResponseCycle

__all__ = [
    "NO_BODY",
    "Environ",
    "ExcInfo",
    "FileWrapper",
    "StartResponse",
    "WSGIApp",
    "Write",
    "close_result",
    "encode_header",
    "gathered_body",
    "parse_status",
    "request_environ",
    "server_environ",
    "start_response",
    "traceback_response",
]

#: ``(type, value, traceback)`` as returned by ``sys.exc_info()`` for a raised exception.
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
#: The environ dictionary.
Environ = dict[str, Any]
#: The ``write(data)`` callable ``start_response`` returns.
Write = Callable[[bytes], None]


class StartResponse(Protocol):
    """``start_response(status, headers, exc_info=None) -> write``."""

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None, /
    ) -> Write:
        """Begin the response."""


#: A WSGI application.
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

#: PEP 3333: "Applications and middleware are forbidden from using HTTP/1.1 hop-by-hop
#: features or headers". ``Connection: close`` is accepted as the one way to ask for a close.
_HOP_BY_HOP = frozenset(
    [
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    ]
)
_name = itemgetter(0)
_value = itemgetter(1)
#: CGI (RFC 3875 4.1.2, 4.1.3): the two fields whose keys have no ``HTTP_``.
_CGI_KEYS = {"HTTP_CONTENT_TYPE": "CONTENT_TYPE", "HTTP_CONTENT_LENGTH": "CONTENT_LENGTH"}
#: Environ keys of common request header names.
_KEYS: dict[bytes, str] = {
    b"content-type": "CONTENT_TYPE",
    b"content-length": "CONTENT_LENGTH",
    **{
        name: "HTTP_" + name.decode("ascii").upper().replace("-", "_")
        for name in (
            b"accept accept-encoding accept-language authorization cache-control connection "
            b"cookie dnt forwarded host if-match if-modified-since if-none-match origin pragma "
            b"range referer sec-fetch-dest sec-fetch-mode sec-fetch-site sec-fetch-user "
            b"sec-websocket-extensions sec-websocket-key sec-websocket-protocol "
            b"sec-websocket-version traceparent tracestate transfer-encoding "
            b"upgrade-insecure-requests upgrade user-agent x-forwarded-for x-forwarded-host "
            b"x-forwarded-port x-forwarded-prefix x-forwarded-proto x-real-ip x-request-id"
        ).split()
    },
}
_known = _KEYS.get
_latin1 = methodcaller("decode", "latin-1")
_CONTENT_LENGTH = b"content-length"
#: The encoded names of common response fields, as applications spell them: none hop-by-hop,
#: and Content-Length as the one spelling the core recognises. Other names go by the rules.
_COMMON_NAMES = (
    "Accept-Ranges", "Access-Control-Allow-Credentials", "Access-Control-Allow-Headers",
    "Access-Control-Allow-Methods", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers",
    "Access-Control-Max-Age", "Age", "Allow", "Cache-Control", "Content-Disposition",
    "Content-Encoding", "Content-Language", "Content-Length", "Content-Location", "Content-Range",
    "Content-Security-Policy", "Content-Type", "Cross-Origin-Opener-Policy",
    "Cross-Origin-Resource-Policy", "ETag", "Expires", "Last-Modified", "Link", "Location",
    "Permissions-Policy", "Pragma", "Referrer-Policy", "Retry-After", "Set-Cookie",
    "Strict-Transport-Security", "Vary", "WWW-Authenticate", "X-Content-Type-Options",
    "X-Frame-Options", "X-Request-Id", "X-XSS-Protection", "cache-control", "content-length",
    "content-type", "etag", "location", "set-cookie", "vary",
)  # fmt: skip
_RAW_NAMES: dict[str, bytes] = {
    name: _CONTENT_LENGTH if name.lower() == "content-length" else name.encode("latin-1")
    for name in _COMMON_NAMES
}
_raw_name = _RAW_NAMES.get
#: The standard status lines, split.
_STATUSES: dict[str, tuple[int, bytes]] = {
    f"{status.value} {status.phrase}": (status.value, status.phrase.encode("latin-1"))
    for status in HTTPStatus
}


class FileWrapper:
    """``wsgi.file_wrapper``: a file to send as the response body.

    A server may send it with ``os.sendfile`` from the file's current position when the file
    allows it; otherwise it is read in blocks of ``blksize`` bytes.
    """

    def __init__(self, filelike: IO[bytes], blksize: int = 64 * 1024) -> None:
        self.filelike = filelike
        self.blksize = blksize

    def __iter__(self) -> Iterator[bytes]:
        """Read the file in blocks of ``blksize`` bytes."""
        read = self.filelike.read
        while block := read(self.blksize):
            yield block

    def close(self) -> None:
        """Close the file."""
        close_result(self.filelike)


class _NoBody:
    """``wsgi.input`` of a request without a body: always at its end (stateless, shared)."""

    __slots__ = ()

    def read(self, size: int | None = -1) -> bytes:
        """Nothing to read."""
        return b""

    def readline(self, size: int | None = -1) -> bytes:
        """Nothing to read."""
        return b""

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """Nothing to read."""
        return []

    def __iter__(self) -> Iterator[bytes]:
        """No lines."""
        return iter(())


#: The one ``wsgi.input`` for requests that have no body.
NO_BODY = _NoBody()


def close_result(result: object) -> None:
    """PEP 3333: the server calls the result's ``close()`` (if it has one), whatever happened."""
    close = getattr(result, "close", None)
    if close is not None:
        close()


def server_environ(  # noqa: PLR0917
    name: str, port: str, root_path: str, tls: bool, multiprocess: bool, multithread: bool = True
) -> Environ:
    """The keys every request of one listener shares: ``SERVER_NAME``/``SERVER_PORT``,
    ``SCRIPT_NAME`` (``root_path``), the ``wsgi.*`` keys; ``wsgi.input`` is :data:`NO_BODY`
    (a server replaces it for a request with a body). Copy it for each request."""
    return {
        "SERVER_NAME": name,
        "SERVER_PORT": port,
        "SCRIPT_NAME": root_path.rstrip("/"),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https" if tls else "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": multithread,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
        # The stream ends at the end of the body, chunked or not (werkzeug reads to EOF then).
        "wsgi.input_terminated": True,
        "wsgi.input": NO_BODY,
    }


def request_environ(base: Environ, request: Request) -> Environ:
    """The PEP 3333 environ of ``request``: a copy of ``base`` (:func:`server_environ` plus the
    peer's ``REMOTE_ADDR``/``REMOTE_PORT``) with the request's keys; strings are latin-1
    decoded bytes, per the PEP.

    ``PATH_INFO`` is the percent-decoded path (refused with
    :class:`~tether.errors.BadRequest` when a ``%`` is stray), without ``base``'s
    ``SCRIPT_NAME`` when it starts with it. Repeated fields are joined with ", " (``Cookie``
    with "; ", RFC 6265 section 5.4). A field name with "_" is dropped: CGI maps "_" and "-"
    alike, so it could pass for a proxy's field. Forwarding fields are left as they came
    (``tether_server.forwarded.apply_forwarding`` applies or removes them).
    """
    target = request.target
    raw_path, query = split_target(target)
    path = (unquote_path(raw_path) if 0x25 in raw_path else raw_path).decode("latin-1")
    root_path = base.get("SCRIPT_NAME", "")
    if root_path and (path == root_path or path.startswith(root_path + "/")):
        path = path[len(root_path) :]
    environ = {
        **base,
        "REQUEST_METHOD": request.method.decode("latin-1"),
        "PATH_INFO": path,
        "QUERY_STRING": query.decode("latin-1"),
        "REQUEST_URI": target.decode("latin-1"),
        "SERVER_PROTOCOL": "HTTP/1.1" if request.http_version == b"1.1" else "HTTP/1.0",
    }
    headers = request.headers
    # The usual head (only names of _KEYS, none twice, none in the base) in a few C-level
    # passes; any other goes on to the passes below, which start again from its first field.
    fields = dict(zip(map(_known, map(_name, headers)), map(_latin1, map(_value, headers))))
    if None not in fields and len(fields) == len(headers) and fields.keys().isdisjoint(environ):
        environ |= fields  # type: ignore[arg-type]  # no None key: checked above
        return environ
    # Past a few fields the whole-head passes cost less than a turn of the loop per field.
    if len(headers) > 4 and _batched_fields(environ, headers):
        return environ
    for name, value in headers:
        key = _known(name)
        if key is None:
            if 0x5F in name:  # "_" (an int needle: see tether.serving.unquote_path)
                continue
            key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
            key = _CGI_KEYS.get(key, key)  # a hand-made Request's "Content-Type", say
        text = value.decode("latin-1")
        if key in environ:
            environ[key] = f"{environ[key]}{'; ' if key == 'HTTP_COOKIE' else ', '}{text}"
        else:
            environ[key] = text
    return environ


def _batched_fields(environ: Environ, headers: Headers) -> bool:
    """Add the ``HTTP_*`` keys of the usual head (no repeated name, no "_" in a name) in a few
    C-level passes over all of its fields at once, rather than a Python turn per field; False,
    having added nothing, for any other head (the per-field loop then does it)."""
    names = b"\n".join(map(_name, headers))
    if 0x5F in names:  # "_"
        return False
    keys = "HTTP_" + names.decode("latin-1").upper().replace("-", "_").replace("\n", "\nHTTP_")
    key_list = keys.split("\n")
    values = b"\n".join(map(_value, headers)).decode("latin-1").split("\n")
    fields = dict(zip(key_list, values))
    # Each count equal: one key and one value per field (no LF inside a name or value, which a
    # parsed head cannot have but a hand-made Request could), and no name twice.
    if not len(key_list) == len(values) == len(fields) == len(headers):
        return False
    if "HTTP_CONTENT_TYPE" in fields:
        fields["CONTENT_TYPE"] = fields.pop("HTTP_CONTENT_TYPE")
    if "HTTP_CONTENT_LENGTH" in fields:
        fields["CONTENT_LENGTH"] = fields.pop("HTTP_CONTENT_LENGTH")
    if not fields.keys().isdisjoint(environ):
        return False  # a key the base already has: joined by the per-field loop
    environ.update(fields)
    return True


def gathered_body(environ: Environ, stream: IO[bytes], size: int) -> None:
    """Give ``environ`` a request body read whole (and de-chunked) before the application runs:
    ``wsgi.input`` is ``stream``, ``CONTENT_LENGTH`` its ``size``, and ``Transfer-Encoding`` is
    gone, so frameworks that read only ``CONTENT_LENGTH`` (Django, Bottle, Falcon) see it all."""
    environ["wsgi.input"] = stream
    environ["CONTENT_LENGTH"] = str(size)
    environ.pop("HTTP_TRANSFER_ENCODING", None)


def parse_status(status: str) -> tuple[int, bytes]:
    """Check a status line like ``"200 OK"`` and split it into code and reason."""
    parsed = _STATUSES.get(status) if type(status) is str else None
    if parsed is not None:
        return parsed
    if type(status) is not str:
        raise TypeError(f"the status must be a str, not {type(status).__name__}")
    if len(status) < 4 or status[3] != " " or not status[:3].isdigit():
        raise ValueError(f"the status must look like '200 OK', got {status!r}")
    return int(status[:3]), status[4:].encode("latin-1")


def encode_header(item: tuple[str, str]) -> tuple[bytes, bytes]:
    """Check one application header pair and encode it (the core validates the bytes)."""
    return _encode_fields((item,))[0]


def _encode_fields(headers: Iterable[Sequence[str]]) -> list[tuple[bytes, bytes]]:
    """:func:`encode_header` on each pair, in one loop rather than a call per pair.

    Each pair is read as any two strings (PEP 3333 asks for tuples; pure Python has always
    taken a list too, and the compiled core must not be stricter than that)."""
    fields: list[tuple[bytes, bytes]] = []
    append = fields.append
    for name, value in headers:
        if type(name) is not str or type(value) is not str:
            raise TypeError("header names and values must be str")
        raw_name = _raw_name(name)
        if raw_name is None:
            lname = name.lower()
            if lname in _HOP_BY_HOP and (lname != "connection" or value.strip().lower() != "close"):
                raise ValueError(
                    f"hop-by-hop header {name!r} is not allowed from a WSGI application"
                )
            # Content-Length is recognised by identity, so spell its name once.
            raw_name = _CONTENT_LENGTH if lname == "content-length" else name.encode("latin-1")
        append((raw_name, value.encode("latin-1")))
    return fields


def start_response(
    cycle: ResponseCycle,
    status: str,
    headers: Iterable[tuple[str, str]],
    exc_info: ExcInfo | None = None,
) -> None:
    """PEP 3333 ``start_response`` on ``cycle``: with ``exc_info`` a head not yet sent is
    replaced (a committed one re-raises the exception); without it, a second call is an error.
    """
    if exc_info is not None:
        try:
            if cycle.committed:
                raise exc_info[1].with_traceback(exc_info[2])
        finally:
            exc_info = None
    elif cycle.phase is not CyclePhase.WAITING:
        raise AssertionError("start_response() called again without exc_info (PEP 3333)")
    # A standard status line is parse_status's first look-up, without the call.
    parsed = _STATUSES.get(status) if type(status) is str else None
    code, reason = parsed if parsed is not None else parse_status(status)
    cycle.start(code, _encode_fields(headers), reason)


def traceback_response(exc: BaseException) -> tuple[Response, bytes]:
    """The 500 that carries the traceback of ``exc`` (waitress's ``expose_tracebacks``; for
    development only: it shows the code to any client)."""
    text = "Internal Server Error\n\n" + "".join(traceback.format_exception(exc))
    body = text.encode("utf-8", "replace")
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"connection", b"close"),
    ]
    return Response(500, headers), body
