"""Static files, the part both servers share: find the file safely, decide the response.

:class:`StaticFiles` takes what any server knows about a request -- the method, the decoded path
under the mount, the request headers -- and returns a :class:`StaticResponse`: the status, the
response headers, and what to send (the whole file, one range, several ranges as
``multipart/byteranges``, a short text, or nothing). The ASGI app
(:mod:`tether_asyncio.static`) and the WSGI app (:mod:`tether_threaded.static`) only move those
bytes. The HTTP decisions are the core's: :func:`tether.conditional.evaluate_preconditions`
(304/412), :func:`tether.ranges.evaluate_range` (206/416), :func:`tether.coding.negotiate_encoding`
(precompressed ``.br``/``.gz`` siblings).

What users of Starlette's ``StaticFiles``, whitenoise and nginx expect, and where we chose:

* Only GET and HEAD; anything else is 405 with ``Allow: GET, HEAD``.
* Nothing outside the directory is ever served, and a refusal never says why: ``..`` segments
  (also those a server decoded from ``%2e%2e`` or ``..%2f``), NUL, backslashes, absolute or
  drive paths, symlinks whose target resolves outside the root (``realpath`` + ``commonpath``),
  and anything but a regular file are all 404. The file is opened with ``O_NOFOLLOW`` on its
  resolved path and checked again after opening, so a file swapped for a symlink or a FIFO
  between the check and the open is refused too, and the bytes sent are that open file's
  (except with ``http.response.pathsend``, where the server reopens the resolved path).
* Dotfiles are not served: a path with a segment starting with ``.`` (``/.env``,
  ``/.git/config``, ``/%2eenv`` once decoded) is 404, except ``/.well-known/...`` (RFC 8615), as
  Express's serve-static ignores them; a directory of a project served whole would otherwise
  give away its secrets. ``dotfiles=True`` (``--static-dotfiles``) serves them.
* ``html=True``: a path ending in ``/`` serves the directory's ``index.html``; a directory
  without the slash is a 307 to the slash form (query kept); a 404 sends the root's
  ``404.html`` when there is one -- as Starlette does.
* ``precompressed=True``: ``name.br`` / ``name.gz`` next to ``name`` are sent to clients whose
  ``Accept-Encoding`` takes them, with ``Content-Encoding``, ``Vary: Accept-Encoding`` and an
  ETag of their own; the Content-Type is the original's.
* ``max_age``: ``Cache-Control: public, max-age=N``.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import mimetypes
import os
import secrets
import stat
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from tether.coding import VARY, negotiate_encoding
from tether.conditional import ETag, Precondition, evaluate_preconditions
from tether.httpdate import format_http_date
from tether.ranges import ByteRange, Byteranges, RangeReadError, byteranges, evaluate_range
from tether_server.static_mounts import (
    StaticMount,
    add_static_option,
    mount_rest,
    mount_table,
    parse_static_mount,
)

__all__ = [
    "ALLOW",
    "REQUEST_FIELDS",
    "Body",
    "StaticFiles",
    "StaticMount",
    "StaticResponse",
    "add_static_option",
    "mount_rest",
    "mount_table",
    "parse_static_mount",
]

Headers = list[tuple[bytes, bytes]]

#: The ``Allow`` field of a 405.
ALLOW = (b"allow", b"GET, HEAD")
#: The request fields :meth:`StaticFiles.respond` reads (an adapter may pass only these).
REQUEST_FIELDS = (
    b"accept-encoding",
    b"if-match",
    b"if-none-match",
    b"if-modified-since",
    b"if-unmodified-since",
    b"if-range",
    b"range",
)

#: Precompressed siblings: the coding, the file suffix; in the order preferred on a tie.
_SIBLINGS = (("br", ".br"), ("gzip", ".gz"))

#: A file that is itself compressed is served as such, not as its inner type.
_ENCODED_TYPES = {
    "gzip": "application/gzip",
    "br": "application/x-brotli",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
}

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)  # the path is already resolved; a symlink now is a swap
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO swapped in must not block the open
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


class Body(enum.Enum):
    """What a :class:`StaticResponse` sends after its head."""

    #: Nothing: HEAD, 304, 412, 416, 307.
    NOTHING = "nothing"
    #: :attr:`StaticResponse.text`: the short body of a 404 or 405.
    TEXT = "text"
    #: The whole file (``os.sendfile`` / ``http.response.pathsend`` may send it).
    FILE = "file"
    #: One range of the file: :attr:`StaticResponse.ranges` ``[0]``.
    RANGE = "range"
    #: Several ranges as ``multipart/byteranges``: :attr:`StaticResponse.multipart`.
    BYTERANGES = "byteranges"


@dataclass(eq=False)
class StaticResponse:
    """A decided response. When :attr:`file` is set, the caller sends it and calls :meth:`close`."""

    status: int
    headers: Headers
    body: Body = Body.NOTHING
    text: bytes = b""
    #: The resolved path of the file sent (for ``http.response.pathsend``).
    path: str | None = None
    #: The open file (read from it, never from :attr:`path`, when not using pathsend).
    file: BinaryIO | None = None
    size: int = 0
    ranges: tuple[ByteRange, ...] = ()
    multipart: Byteranges | None = None
    _pieces: Iterator[bytes] | None = field(default=None, repr=False)

    def chunks(self, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
        """The body as byte pieces (blocking file reads: call it off an event loop)."""
        if self.body is Body.TEXT:
            yield self.text
            return
        file = self.file
        if file is None:
            return
        if self.body is Body.FILE:
            yield from _read_span(file, 0, self.size, chunk_size)
        elif self.body is Body.RANGE:
            span = self.ranges[0]
            yield from _read_span(file, span.start, span.stop, chunk_size)
        elif self.body is Body.BYTERANGES:
            assert self.multipart is not None
            # A file that shrank meanwhile ends the body early, as _read_span does.
            with contextlib.suppress(RangeReadError):
                yield from self.multipart.pieces(
                    lambda offset, size: _pread(file, offset, size), chunk_size
                )

    def next_chunk(self, chunk_size: int = 64 * 1024) -> bytes:
        """The next piece of :meth:`chunks`, ``b""`` at the end (one call per thread hop)."""
        if self._pieces is None:
            self._pieces = self.chunks(chunk_size)
        return next(self._pieces, b"")

    def close(self) -> None:
        """Close the file, if one is open. Safe to call twice."""
        if self.file is not None:
            self.file.close()
            self.file = None


def _pread(file: BinaryIO, offset: int, size: int) -> bytes:
    file.seek(offset)
    data = file.read(size)
    return data


def _read_span(file: BinaryIO, start: int, stop: int, chunk_size: int) -> Iterator[bytes]:
    """Bytes ``start`` to ``stop``; a file that shrank meanwhile ends the body early (and the
    server, seeing fewer bytes than Content-Length announced, closes the connection)."""
    file.seek(start)
    offset = start
    while offset < stop:
        data = file.read(min(chunk_size, stop - offset))
        if not data:
            return
        offset += len(data)
        yield data


@dataclass(frozen=True, slots=True)
class _Found:
    path: str
    file: BinaryIO
    info: os.stat_result


class StaticFiles:
    """Serve the files under ``directory`` (see the module docstring for the rules).

    ``directory`` must exist and be a directory (:class:`NotADirectoryError` otherwise). All
    methods do blocking file-system calls: an async server runs :meth:`respond` in a thread.
    ``chunk_size`` is what an adapter reads from the file at a time (:meth:`respond` ignores it);
    the adapters subclass this class and add the call of their interface.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        html: bool = False,
        precompressed: bool = True,
        max_age: int | None = None,
        chunk_size: int = 256 * 1024,
        dotfiles: bool = False,
    ) -> None:
        root = os.path.realpath(os.fspath(directory))
        if not os.path.isdir(root):
            raise NotADirectoryError(
                f"static directory {os.fspath(directory)!r} is not a directory"
            )
        if max_age is not None and max_age < 0:
            raise ValueError("max_age must be >= 0")
        self.directory = root
        self.html = html
        self.precompressed = precompressed
        self.max_age = max_age
        self.chunk_size = chunk_size
        self.dotfiles = dotfiles

    # -- the decision ---------------------------------------------------------------------------

    def respond(
        self,
        method: bytes,
        path: str,
        headers: Sequence[tuple[bytes, bytes]],
        *,
        base: str = "",
        query: bytes = b"",
    ) -> StaticResponse:
        """Decide the response to ``method path`` with request ``headers``.

        ``path`` is the percent-decoded path under the mount (``/css/site.css``); ``base`` is the
        decoded path the mount sits at and ``query`` the raw query string, both only used for the
        307 to a directory's slash form.
        """
        head = method == b"HEAD"
        if method not in (b"GET", b"HEAD"):
            return _text(405, b"Method Not Allowed", head, [ALLOW])
        parts = _safe_parts(path)
        if parts is None or (not self.dotfiles and _hidden(parts)):
            return self._not_found(head)
        found = self._open(parts)
        name = parts[-1] if parts else ""
        # "name/." is "name/" (RFC 3986 section 5.2.4 keeps the slash a last "." leaves).
        slash = path.endswith(("/", "/."))
        if found == "dir":
            if not self.html:
                return self._not_found(head)
            if not slash:
                # Built from the checked segments: "//evil.example" must not become a
                # protocol-relative Location (an open redirect).
                target = "/".join([base.rstrip("/"), *parts, ""])
                location = urllib.parse.quote("/" + target.lstrip("/"), safe="/:@!$&'()*+,;=~")
                if query:
                    location += "?" + query.decode("latin-1")
                return StaticResponse(
                    307, [(b"location", location.encode("latin-1")), (b"content-length", b"0")]
                )
            name = "index.html"
            found = self._open([*parts, name])
        elif slash and isinstance(found, _Found):
            found.file.close()  # "file.txt/" names a directory that does not exist
            found = None
        if not isinstance(found, _Found):
            return self._not_found(head)
        return self._file_response(method, found, name, headers)

    def _not_found(self, head: bool) -> StaticResponse:
        """404: with ``html=True`` the root's ``404.html`` when there is one (as Starlette)."""
        page = self._open(["404.html"]) if self.html else None
        if not isinstance(page, _Found):
            return _not_found(head)
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", b"%d" % page.info.st_size),
        ]
        if head:
            page.file.close()
            return StaticResponse(404, headers)
        return StaticResponse(
            404, headers, Body.FILE, path=page.path, file=page.file, size=page.info.st_size
        )

    def _file_response(
        self,
        method: bytes,
        found: _Found,
        name: str,
        headers: Sequence[tuple[bytes, bytes]],
    ) -> StaticResponse:
        extra: Headers = []
        if self.precompressed:
            variants = {}
            for coding, suffix in _SIBLINGS:
                sibling = self._open_real(found.path + suffix)
                if sibling is not None:
                    variants[coding] = sibling
            if variants:
                extra.append(VARY)
                accept = [
                    value
                    for field_name, value in headers
                    if field_name.lower() == b"accept-encoding"
                ]
                chosen = negotiate_encoding(b", ".join(accept) if accept else None, tuple(variants))
                for coding, sibling in variants.items():
                    if coding == chosen:
                        found.file.close()
                        found = sibling
                        extra.append((b"content-encoding", coding.encode("ascii")))
                    else:
                        sibling.file.close()
        try:
            return self._representation(method, found, name, headers, extra)
        except BaseException:
            found.file.close()
            raise

    def _representation(
        self,
        method: bytes,
        found: _Found,
        name: str,
        headers: Sequence[tuple[bytes, bytes]],
        extra: Headers,
    ) -> StaticResponse:
        info = found.info
        size = info.st_size
        coding = next((value for n, value in extra if n == b"content-encoding"), b"")
        etag = ETag(b"%x-%x%s" % (info.st_mtime_ns, size, b"-" + coding if coding else b""))
        last_modified = info.st_mtime
        now = time.time()
        validators: Headers = [(b"etag", etag.to_bytes())]
        if self.max_age is not None:
            validators.append((b"cache-control", b"public, max-age=%d" % self.max_age))
        vary = [pair for pair in extra if pair == VARY]
        outcome = evaluate_preconditions(
            method, headers, etag=etag, last_modified=last_modified, now=now
        )
        if outcome is not Precondition.PROCEED:
            found.file.close()
            if outcome is Precondition.NOT_MODIFIED:
                return StaticResponse(304, validators + vary)
            return StaticResponse(412, [(b"content-length", b"0")])
        content_type = _content_type(name)
        common = [
            (b"content-type", content_type),
            *validators,
            (b"last-modified", format_http_date(last_modified)),
            (b"accept-ranges", b"bytes"),
            *extra,
        ]
        decision = evaluate_range(
            method, headers, length=size, etag=etag, last_modified=last_modified, now=now
        )
        response = StaticResponse(decision.status, [], path=found.path, file=found.file, size=size)
        if decision.status == 416:
            response.close()
            response.headers = [*decision.headers, *common[1:], (b"content-length", b"0")]
        elif decision.status == 206 and len(decision.ranges) == 1:
            response.body = Body.RANGE
            response.ranges = decision.ranges
            length = decision.ranges[0].length
            response.headers = [*common, *decision.headers, (b"content-length", b"%d" % length)]
        elif decision.status == 206:
            layout = byteranges(
                decision.ranges,
                size,
                boundary=secrets.token_hex(16).encode("ascii"),
                content_type=content_type,
            )
            response.body = Body.BYTERANGES
            response.ranges = decision.ranges
            response.multipart = layout
            response.headers = [*layout.headers(), *common[1:]]
        else:
            response.body = Body.FILE
            response.headers = [*common, (b"content-length", b"%d" % size)]
        if method == b"HEAD":
            response.close()
            response.body = Body.NOTHING
        return response

    # -- finding the file -----------------------------------------------------------------------

    def _open(self, parts: list[str]) -> _Found | str | None:
        """The open regular file at ``parts``, ``"dir"`` for a directory inside the root, or None."""
        real = os.path.realpath(os.path.join(self.directory, *parts))
        if not self._inside(real):
            return None
        try:
            info = os.stat(real)
        except (OSError, ValueError):
            return None
        if stat.S_ISDIR(info.st_mode):
            return "dir"
        return self._open_real(real)

    def _open_real(self, real: str) -> _Found | None:
        """Open ``real`` if it is a regular file inside the root that is not a symlink now."""
        real = os.path.realpath(real)
        if not self._inside(real):
            return None
        try:
            fd = os.open(real, _OPEN_FLAGS)
        except (OSError, ValueError):
            return None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise OSError(errno.EINVAL, "not a regular file")
            file = os.fdopen(fd, "rb")
        except OSError:
            os.close(fd)
            return None
        return _Found(real, file, info)

    def _inside(self, real: str) -> bool:
        root = self.directory
        try:
            return os.path.commonpath([root, real]) == root
        except ValueError:  # different drives, or a mix of absolute and relative
            return False


def _safe_parts(path: str) -> list[str] | None:
    """The path's segments, or None when the path could leave the root or is not a name."""
    if "\x00" in path or "\\" in path:
        return None
    parts = [part for part in path.split("/") if part and part != "."]
    for part in parts:
        if part == ".." or os.path.isabs(part) or os.path.splitdrive(part)[0]:
            return None
    return parts


def _hidden(parts: list[str]) -> bool:
    """Whether a segment names a dotfile or dot directory (``.well-known`` is public)."""
    return any(part[0] == "." and part != ".well-known" for part in parts)


def _content_type(name: str) -> bytes:
    kind, encoding = mimetypes.guess_type(name, strict=False)
    if encoding is not None:
        kind = _ENCODED_TYPES.get(encoding, "application/octet-stream")
    if kind is None:
        kind = "application/octet-stream"
    if kind.startswith("text/") or kind in ("application/javascript", "image/svg+xml"):
        kind += "; charset=utf-8"
    return kind.encode("ascii")


def _text(
    status: int, text: bytes, head: bool, extra: Sequence[tuple[bytes, bytes]] = ()
) -> StaticResponse:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(text)),
        *extra,
    ]
    if head:
        return StaticResponse(status, headers)
    return StaticResponse(status, headers, Body.TEXT, text)


def _not_found(head: bool) -> StaticResponse:
    return _text(404, b"Not Found", head)
