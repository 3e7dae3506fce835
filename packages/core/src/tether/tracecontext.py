"""W3C Trace Context: the ``traceparent`` and ``tracestate`` request fields, read strictly.

A server that writes the trace id in its access log, or hands it to the application, needs the
same reading every tracer has; this module is that reading, pure and dependency-free (W3C
Recommendation "Trace Context", Level 1, section 3):

- :func:`parse_traceparent` gives a :class:`TraceParent` or ``None``. Version ``00`` must be
  exactly ``00-<32 hex>-<16 hex>-<2 hex>``, lowercase, with neither id all zeros; a higher
  version is read by its version-00 prefix when what follows is ``-`` (3.2.4, "parse what you
  can"); version ``ff`` is invalid.
- :func:`parse_tracestate` gives the list of ``(key, value)`` members, or ``None`` when the
  field is invalid (3.3: a vendor then discards the whole field): bad keys or values, more than
  32 members, or a key twice.
- :func:`trace_context` reads both from a request's header list: more than one
  ``traceparent`` field is invalid, several ``tracestate`` fields are joined (3.3.1.1).
- :meth:`TraceParent.child` is the field a service sends on its own outgoing calls: same trace,
  its own span id (the caller supplies the random bytes: the core reads no entropy source).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
# 3.3.1.3: simple-key, or multi-tenant tenant-id@system-id.
_KEY = re.compile(
    r"[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13}"
)
# 3.3.1.3.2: printable ASCII but "," and "=", up to 256, not ending in a space.
_VALUE = re.compile(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16

#: Most list members a ``tracestate`` may carry (3.3.1.1).
MAX_TRACESTATE_MEMBERS = 32


@dataclass(frozen=True, slots=True)
class TraceParent:
    """A valid ``traceparent``: which trace a request belongs to and which span sent it."""

    #: Two lowercase hex digits; "00" for the version this module knows.
    version: str
    #: 32 lowercase hex digits, not all zero.
    trace_id: str
    #: 16 lowercase hex digits, not all zero: the caller's span.
    parent_id: str
    #: The trace flags byte.
    flags: int

    @property
    def sampled(self) -> bool:
        """The caller may have recorded this trace (flag bit 0)."""
        return bool(self.flags & 1)

    def header_value(self) -> str:
        """This context as a version-00 ``traceparent`` value."""
        return f"00-{self.trace_id}-{self.parent_id}-{self.flags:02x}"

    def child(self, span_id: bytes) -> TraceParent:
        """The context for a call this service makes: the same trace, ``span_id`` (8 bytes,
        from the caller's random source, not all zero) as the parent, version 00."""
        if len(span_id) != 8 or not any(span_id):
            raise ValueError("span_id must be 8 bytes, not all zero")
        return TraceParent("00", self.trace_id, span_id.hex(), self.flags)


def _text(value: bytes | str) -> str | None:
    if isinstance(value, bytes):
        try:
            return value.decode("ascii")
        except UnicodeDecodeError:
            return None
    return value


def parse_traceparent(value: bytes | str) -> TraceParent | None:
    """The :class:`TraceParent` in a ``traceparent`` field value, or ``None`` if invalid."""
    text = _text(value)
    if text is None:
        return None
    text = text.strip(" \t")
    match = _TRACEPARENT.match(text)
    if match is None:
        return None
    version, trace_id, parent_id, flags = match.groups()
    if version == "ff" or trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    if len(text) != 55 and (version == "00" or text[55] != "-"):
        # Version 00 has nothing after the flags; a later version may, after a "-".
        return None
    return TraceParent(version, trace_id, parent_id, int(flags, 16))


def parse_tracestate(values: Iterable[bytes | str]) -> tuple[tuple[str, str], ...] | None:
    """The members of the ``tracestate`` field lines ``values`` (combined in order), or ``None``
    when the field is invalid and must be discarded whole."""
    members: list[tuple[str, str]] = []
    keys: set[str] = set()
    for raw in values:
        text = _text(raw)
        if text is None:
            return None
        for raw_item in text.split(","):
            item = raw_item.strip(" \t")
            if not item:
                continue  # empty list members are allowed and ignored (3.3.1.1)
            key, eq, val = item.partition("=")
            if not eq or _KEY.fullmatch(key) is None or _VALUE.fullmatch(val) is None:
                return None
            if key in keys:
                return None
            keys.add(key)
            members.append((key, val))
            if len(members) > MAX_TRACESTATE_MEMBERS:
                return None
    return tuple(members)


@dataclass(frozen=True, slots=True)
class TraceContext:
    """What a request says about its trace: the parent, and the vendors' state."""

    parent: TraceParent
    #: ``(key, value)`` members, left-most (most recent) first; empty when absent or invalid.
    state: tuple[tuple[str, str], ...]


def trace_context(headers: Iterable[tuple[bytes, bytes]]) -> TraceContext | None:
    """The request's trace context, or ``None`` when it has no valid ``traceparent``.

    ``headers`` are ``(name, value)`` pairs with lowercase names, as the core's events carry
    them. A ``tracestate`` is read only alongside a valid ``traceparent`` (3.3).
    """
    parents: list[bytes] = []
    states: list[bytes] = []
    for name, value in headers:
        if name == b"traceparent":
            parents.append(value)
        elif name == b"tracestate":
            states.append(value)
    if len(parents) != 1:
        return None
    parent = parse_traceparent(parents[0])
    if parent is None:
        return None
    return TraceContext(parent, parse_tracestate(states) or ())


__all__ = [
    "MAX_TRACESTATE_MEMBERS",
    "TraceContext",
    "TraceParent",
    "parse_traceparent",
    "parse_tracestate",
    "trace_context",
]
