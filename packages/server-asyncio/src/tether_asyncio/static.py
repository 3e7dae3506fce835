"""Static files as an ASGI app, for any ASGI server (``tether serve --static PREFIX=DIR`` uses it).

:class:`StaticFiles` asks its base, :class:`tether_server.static.StaticFiles`, what to answer (in
a worker thread: opening a file blocks), then sends the file as ``http.response.pathsend`` where
the server offers it (it reopens the resolved path: pass ``pathsend=False`` where others can swap
files in the directory), else, and always for ranges, in chunks read in a worker thread.
:func:`with_static` puts mounts in front of an app. The path served is the scope's ``path``
without its ``root_path`` (Starlette's convention: ``Mount("/assets", StaticFiles(...))`` works).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import anyio.to_thread

from tether_asyncio._types import ASGIApp, Receive, Scope, Send
from tether_server import static
from tether_server.static import Body, StaticMount, StaticResponse, mount_rest

__all__ = ["StaticFiles", "with_static"]


class StaticFiles(static.StaticFiles):
    """An ASGI app serving the files under ``directory`` (arguments as the base class's, plus
    whether to use ``http.response.pathsend`` when the server offers it)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        html: bool = False,
        precompressed: bool = True,
        max_age: int | None = None,
        chunk_size: int = 256 * 1024,
        pathsend: bool = True,
        dotfiles: bool = False,
    ) -> None:
        super().__init__(
            directory,
            html=html,
            precompressed=precompressed,
            max_age=max_age,
            chunk_size=chunk_size,
            dotfiles=dotfiles,
        )
        self.pathsend = pathsend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one HTTP request (lifespan is acknowledged; a WebSocket is refused)."""
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind != "http":
            await send({"type": "websocket.close", "code": 1000})
            return
        root_path, path = _split_root(scope)
        response = await anyio.to_thread.run_sync(
            lambda: self.respond(
                scope["method"].encode("ascii"),
                path,
                scope["headers"],
                base=root_path,
                query=scope.get("query_string", b""),
            )
        )
        try:
            await self._send(scope, send, response)
        finally:
            response.close()

    async def _send(self, scope: Scope, send: Send, response: StaticResponse) -> None:
        await send(
            {"type": "http.response.start", "status": response.status, "headers": response.headers}
        )
        if response.file is None:  # no body, or the short text of a 404 or 405
            await send({"type": "http.response.body", "body": response.text})
            return
        extensions = scope.get("extensions") or {}
        if self.pathsend and response.body is Body.FILE and "http.response.pathsend" in extensions:
            assert response.path is not None
            response.close()
            await send({"type": "http.response.pathsend", "path": response.path})
            return
        size = self.chunk_size
        chunk = await anyio.to_thread.run_sync(response.next_chunk, size)
        while True:
            # A file that shrank since it was opened ends early; the server then sees fewer bytes
            # than Content-Length announced and closes the connection.
            following = await anyio.to_thread.run_sync(response.next_chunk, size) if chunk else b""
            await send({"type": "http.response.body", "body": chunk, "more_body": bool(following)})
            if not following:
                return
            chunk = following


#: A mount given as a prefix and an app.
StaticFilesMount = tuple[str, StaticFiles]


def with_static(app: ASGIApp, mounts: Sequence[StaticMount | StaticFilesMount]) -> ASGIApp:
    """``app`` behind the static ``mounts``: ``StaticMount(prefix, directory)`` (what
    ``--static`` gives) or ``(prefix, StaticFiles(...))`` pairs; the first matching prefix wins."""
    table = static.mount_table(mounts, StaticFiles)

    async def mounted(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            root_path, path = _split_root(scope)
            for prefix, files in table:
                if mount_rest(prefix, path) is not None:
                    await files({**scope, "root_path": root_path + prefix}, receive, send)
                    return
        await app(scope, receive, send)

    return mounted


def _split_root(scope: Scope) -> tuple[str, str]:
    """The scope's ``root_path`` and its ``path`` without it."""
    root_path: str = scope.get("root_path", "")
    path: str = scope["path"]
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    return root_path, path


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        kind = (await receive())["type"]  # lifespan.startup, then lifespan.shutdown
        await send({"type": f"{kind}.complete"})
        if kind == "lifespan.shutdown":
            return
