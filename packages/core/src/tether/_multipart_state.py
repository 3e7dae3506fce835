"""The states of a ``multipart/form-data`` body and, in one table, the legal moves between them
(:class:`tether.multipart.MultipartParser` checks each step against it under ``assert``)."""

from __future__ import annotations

import enum


class _State(enum.Enum):
    PREAMBLE = "preamble"  # before the first delimiter
    AFTER_DELIMITER = "after delimiter"  # "--" closes, else padding and CRLF
    HEADERS = "headers"  # a part's header section, up to the empty line
    BODY = "body"  # a part's content, up to the next delimiter
    AFTER_CLOSE = "after close"  # transport padding after the close delimiter
    EPILOGUE = "epilogue"  # ignored until close()
    CLOSED = "closed"  # closed or failed


_PREAMBLE = _State.PREAMBLE
_AFTER_DELIMITER = _State.AFTER_DELIMITER
_HEADERS = _State.HEADERS
_BODY = _State.BODY
_AFTER_CLOSE = _State.AFTER_CLOSE
_EPILOGUE = _State.EPILOGUE
_CLOSED = _State.CLOSED

#: Legal transitions (any state may also go to CLOSED on error or close()).
_TRANSITIONS: dict[_State, frozenset[_State]] = {
    _PREAMBLE: frozenset({_AFTER_DELIMITER}),
    _AFTER_DELIMITER: frozenset({_HEADERS, _AFTER_CLOSE}),
    _HEADERS: frozenset({_BODY}),
    _BODY: frozenset({_AFTER_DELIMITER}),
    _AFTER_CLOSE: frozenset({_EPILOGUE}),
    _EPILOGUE: frozenset(),
    _CLOSED: frozenset(),
}


def _reachable(state: _State) -> frozenset[_State]:
    """States one segment can lead to from ``state`` (it may pass through several)."""
    seen = {state}
    todo = [state]
    while todo:
        for nxt in _TRANSITIONS[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return frozenset(seen)


# Checked (under assert) after every segment: the code moves only along _TRANSITIONS.
_REACHABLE = {state: _reachable(state) for state in _State}
