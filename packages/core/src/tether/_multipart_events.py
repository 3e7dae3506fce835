"""What the ``multipart/form-data`` parser speaks: its limits, errors and events.

The parser itself is :mod:`tether.multipart`, which exports every public name here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tether.errors import LocalProtocolError, RemoteProtocolError

# ---- limits -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MultipartLimits:
    """Limits of one multipart body; each is checked before the offending bytes are kept.

    ``None`` means "no limit" and is allowed only where nothing is buffered.
    """

    #: Most parts in the body (413 beyond).
    max_parts: int = 1000
    #: Largest header section of one part, boundary-line padding included (413 beyond).
    max_header_size: int = 8 * 1024
    #: Most header fields in one part (413 beyond).
    max_header_count: int = 16
    #: Largest content of a field, i.e. a part without ``filename`` (413 beyond).
    max_field_size: int = 1024 * 1024
    #: Largest content of a file part; ``None`` for no limit (the content is streamed).
    max_file_size: int | None = None
    #: Largest whole body, preamble and epilogue included; ``None`` for no limit.
    max_total_size: int | None = None


# ---- errors -----------------------------------------------------------------------------------


class MultipartError(RemoteProtocolError):
    """Base of every error in a multipart body sent by the peer."""

    status_hint = 400


class MalformedMultipart(MultipartError):
    """400: the body breaks the RFC 2046 / RFC 7578 syntax."""


class MalformedPartHeaders(MalformedMultipart):
    """400: a part's header section is malformed or lacks a valid Content-Disposition."""


class IncompleteMultipart(MalformedMultipart):
    """400: the body ended before the close delimiter."""


class InvalidBoundary(MalformedMultipart):
    """400: the Content-Type lacks a valid ``boundary`` (RFC 2046 section 5.1.1)."""


class MultipartLimitExceeded(MultipartError):
    """413: a :class:`MultipartLimits` value was exceeded; ``limit`` names it."""

    status_hint = 413
    limit: str = ""

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(f"{message} (MultipartLimits.{limit})")
        self.limit = limit


class TooManyParts(MultipartLimitExceeded):
    """413: more parts than ``max_parts``."""


class PartHeadersTooLarge(MultipartLimitExceeded):
    """413: a part's header section exceeds ``max_header_size`` or ``max_header_count``."""


class FieldTooLarge(MultipartLimitExceeded):
    """413: a field's content exceeds ``max_field_size``."""


class FileTooLarge(MultipartLimitExceeded):
    """413: a file's content exceeds ``max_file_size``."""


class MultipartBodyTooLarge(MultipartLimitExceeded):
    """413: the body exceeds ``max_total_size``."""


class MultipartUsageError(LocalProtocolError):
    """The parser was fed after ``close()`` or after an error."""


# ---- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartStart:
    """A part begins.

    ``headers`` are (lowercase name, value) pairs as received. ``name`` comes
    from Content-Disposition; ``filename`` from ``filename*`` (RFC 8187) when
    present, else ``filename``, else ``None`` (a non-file field). Values are
    returned as sent: no percent-decoding and no path stripping.
    ``content_type`` is the part's Content-Type value, or ``None``.
    """

    name: str
    filename: str | None
    content_type: str | None
    headers: tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True, slots=True)
class PartData:
    """A piece of the current part's content."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PartEnd:
    """The current part is complete."""


@dataclass(frozen=True, slots=True)
class End:
    """The close delimiter was seen: the body is complete."""


MultipartEvent = PartStart | PartData | PartEnd | End

_PART_END = PartEnd()
# PartData is built on the hot path without the frozen dataclass __init__ (about 2x faster).
# The class's own __new__ (object's, in pure Python): compiled, object.__new__ would refuse.
_new = PartData.__new__


def _setter(cls: type, field: str) -> Callable[[object, object], None]:
    """The slot descriptor's setter: how a frozen slotted instance is filled in."""
    setter: Callable[[object, object], None] = vars(cls)[field].__set__
    return setter


_set_data = _setter(PartData, "data")
_END = End()
