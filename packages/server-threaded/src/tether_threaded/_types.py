"""The WSGI callable types (PEP 3333), spelled once for the whole package."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Protocol

#: ``(type, value, traceback)`` as returned by ``sys.exc_info()`` for a raised exception.
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
#: The environ dictionary.
Environ = dict[str, Any]
#: The ``write(data)`` callable ``start_response`` returns.
Write = Callable[[bytes], None]


class StartResponse(Protocol):
    """``start_response(status, headers, exc_info=None) -> write``."""

    def __call__(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = ...,
        /,
    ) -> Write:
        """Begin the response."""


#: A WSGI application.
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

__all__ = ["Environ", "ExcInfo", "StartResponse", "WSGIApp", "Write"]
