"""Checked by mypy --strict in test_typing.py: what a library user's loop relies on."""

from __future__ import annotations

from tether.http1 import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Request,
    ServerConnection,
)


def one_event(conn: ServerConnection) -> Request | Data | EndOfMessage | None:
    event = conn.next_event()
    if event is NEED_DATA or event is PAUSED:
        return None
    if isinstance(event, ConnectionClosed):
        return None
    # Only narrows if NEED_DATA and PAUSED are Final (else event is still Signal | ...).
    return event
