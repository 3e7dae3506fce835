"""Connection states and the one table of legal transitions.

Each side of a connection (the peer's requests, our responses) moves through
:class:`HTTPState`. ``THEIR_TRANSITIONS`` and ``OUR_TRANSITIONS`` list every legal
move; the connection writes a state only by looking a move up there (a test
holds it to that), and refuses anything not listed.
"""

from __future__ import annotations

import enum


class HTTPState(enum.Enum):
    """Where one side of the connection is in the current request/response cycle."""

    # Members are singletons: identity hashing keeps table look-ups off enum's slow __hash__.
    __hash__ = object.__hash__

    #: Waiting for the next request (their side) or for a request to answer (our side).
    IDLE = "IDLE"
    #: Ours only: a request head arrived; a response (1xx or final) may be sent.
    SEND_RESPONSE = "SEND_RESPONSE"
    #: The head is done and body bytes are flowing.
    SEND_BODY = "SEND_BODY"
    #: The message is complete.
    DONE = "DONE"
    #: The message is complete and the connection will not be reused.
    MUST_CLOSE = "MUST_CLOSE"
    #: The connection is closed (their side: the peer sent EOF).
    CLOSED = "CLOSED"
    #: A 101 response was sent; the bytes on the connection now belong to another protocol.
    SWITCHED_PROTOCOL = "SWITCHED_PROTOCOL"
    #: A protocol error happened; nothing more can be done but close.
    ERROR = "ERROR"


class HTTPTimer(enum.Enum):
    """Which deadline ``next_deadline`` reports, and what its expiry means.

    ``KEEP_ALIVE``: no byte of a new request arrived in time; ``handle_timeout``
    gives ``b""`` (close silently). Between requests the wait is
    ``Limits.keep_alive_timeout``; on a fresh connection, before its first
    request, it is ``Limits.head_timeout`` (the client has not sent a byte yet, so
    there is nothing to answer 408 to).

    ``HEAD``: a request head began but did not complete within
    ``Limits.head_timeout`` (slow loris); ``handle_timeout`` gives a 408.

    ``BODY``: the request body stalled (``Limits.body_timeout``) or came too
    slowly (``Limits.min_body_rate``); ``handle_timeout`` gives a 408 if no
    response has started, else ``b""``.
    """

    # Members are singletons: identity hashing keeps table look-ups off enum's slow __hash__.
    __hash__ = object.__hash__

    #: No byte of a new request before the keep-alive timeout: close silently.
    KEEP_ALIVE = "KEEP_ALIVE"
    #: The request head did not complete in time (slow loris): answer 408 and close.
    HEAD = "HEAD"
    #: The request body stalled while the core was waiting for it: close.
    BODY = "BODY"


class _Move(enum.Enum):
    """What happened, as the transition table names it."""

    # Members are singletons: identity hashing keeps table look-ups off enum's slow __hash__.
    __hash__ = object.__hash__

    REQUEST = "REQUEST"  # their side: a request head was parsed
    BODY_DONE = "BODY_DONE"  # their side: the request's EndOfMessage
    INFORMATIONAL = "INFORMATIONAL"  # ours: a 100/103 went out
    SWITCH = "SWITCH"  # ours: a 101 went out
    RESPONSE = "RESPONSE"  # ours: a final response head went out
    RESPONSE_DONE = "RESPONSE_DONE"  # ours: the response's EndOfMessage went out
    NEXT_CYCLE = "NEXT_CYCLE"  # both: start_next_cycle
    CLOSE = "CLOSE"  # their side: EOF between messages
    NO_REUSE = "NO_REUSE"  # ours: the response is complete and the connection will close
    DRAIN = "DRAIN"  # ours: start_next_cycle while the rest of the request body is discarded
    FAIL = "FAIL"  # both: a protocol error, a timeout, or the application failed


S = HTTPState
M = _Move

#: (state, move) -> new state, for each side. Anything missing is illegal.
THEIR_TRANSITIONS: dict[tuple[HTTPState, _Move], HTTPState] = {
    (S.IDLE, M.REQUEST): S.SEND_BODY,
    (S.IDLE, M.CLOSE): S.CLOSED,
    (S.SEND_BODY, M.BODY_DONE): S.DONE,
    (S.DONE, M.NEXT_CYCLE): S.IDLE,
    (S.DONE, M.CLOSE): S.CLOSED,
    # A 101 went out after the whole request: the rest of the bytes belong to another protocol.
    (S.DONE, M.SWITCH): S.SWITCHED_PROTOCOL,
    **{(state, M.FAIL): S.ERROR for state in S},
}
OUR_TRANSITIONS: dict[tuple[HTTPState, _Move], HTTPState] = {
    (S.IDLE, M.REQUEST): S.SEND_RESPONSE,
    (S.SEND_RESPONSE, M.INFORMATIONAL): S.SEND_RESPONSE,
    (S.SEND_RESPONSE, M.SWITCH): S.SWITCHED_PROTOCOL,
    (S.SEND_RESPONSE, M.RESPONSE): S.SEND_BODY,
    (S.SEND_BODY, M.RESPONSE_DONE): S.DONE,
    (S.DONE, M.NO_REUSE): S.MUST_CLOSE,
    (S.DONE, M.NEXT_CYCLE): S.IDLE,
    # The response is complete but the peer is still sending the request's body, which the
    # application did not read: we wait for the next request while the rest is discarded
    # (their side reaches DONE, then both move on with NEXT_CYCLE).
    (S.DONE, M.DRAIN): S.IDLE,
    **{(state, M.FAIL): S.ERROR for state in S},
}

del S, M


def column(
    table: dict[tuple[HTTPState, _Move], HTTPState], move: _Move
) -> dict[HTTPState, HTTPState]:
    """The part of ``table`` for one move, as old state -> new state (one look-up, no tuple)."""
    return {old: new for (old, m), new in table.items() if m is move}
