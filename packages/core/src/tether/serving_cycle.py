"""The rules of one application response, written once for every server (sans I/O).

A server runs an application (ASGI or WSGI) and moves bytes; what the application's response
*means* is decided here: when the head is committed, what an exception means before and after
that point (a canned 500, or a cut connection), the canned 503, which framing promises the
application may break (a body longer than its ``Content-Length``, trailers where they cannot
go), and what the access-log line says. :class:`ResponseCycle` turns the application's calls
into bytes through the core's :class:`~tether.http1.ServerConnection`; the server writes them.

The head is handed to the core only with the first body bytes (or the end): until then the
response is not committed, and a failure still becomes a clean 500 instead of an empty reply.

The numbers both servers keep for connections and WebSocket sessions live here too
(:data:`RULES`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

from tether.errors import LocalProtocolError, ProtocolError, ShortBody
from tether.http1 import (
    Data,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
    ServerConnection,
)
from tether.serving import access_log_line, internal_error_response, with_server_headers

__all__ = ["RULES", "ConnectionRules", "CyclePhase", "ResponseCycle"]

Headers = list[tuple[bytes, bytes]]


class CyclePhase(enum.Enum):
    """Where one response stands."""

    #: Nothing from the application yet.
    WAITING = "waiting"
    #: The head is known but not handed to the core: a failure can still become a 500.
    HEAD = "head"
    #: The head is out: a failure can only cut the connection.
    SENDING = "sending"
    #: The whole response is out.
    COMPLETE = "complete"
    #: The response broke after its head was committed; the connection must close.
    FAILED = "failed"


class _Step(enum.Enum):
    START = "start"
    BODY = "body"
    END = "end"
    CANNED = "canned"
    FAIL = "fail"


_W, _H, _S, _C, _F = CyclePhase
#: The legal moves; anything else is the application's misuse (a LocalProtocolError).
_TRANSITIONS: dict[tuple[CyclePhase, _Step], CyclePhase] = {
    (_W, _Step.START): _H,
    # WSGI: start_response(..., exc_info) may replace a head not yet sent (PEP 3333).
    (_H, _Step.START): _H,
    (_H, _Step.BODY): _S,
    (_S, _Step.BODY): _S,
    (_H, _Step.END): _C,
    (_S, _Step.END): _C,
    (_W, _Step.CANNED): _C,
    (_H, _Step.CANNED): _C,
    (_S, _Step.FAIL): _F,
    (_F, _Step.FAIL): _F,
}
_NO_BODY_STATUSES = frozenset((204, 304))
#: The end of a body without trailers (events are immutable: one serves every response).
_END = EndOfMessage()


@dataclass(frozen=True, slots=True)
class ConnectionRules:
    """The numbers both servers keep for a connection and its WebSocket session, once."""

    #: After a last response (or a WebSocket close): how long, and how many bytes, to read and
    #: discard after half-closing, so the kernel does not answer the client's late bytes with
    #: a reset that destroys the response before it is read.
    linger_seconds: float = 1.0
    linger_bytes: int = 256 * 1024
    #: Queued output above which writers wait (and a WebSocket stops reading frames, whose
    #: answers would pile up unsent), and below which they resume.
    write_high: int = 256 * 1024
    write_low: int = 64 * 1024
    #: Bytes of WebSocket messages received and not yet taken by the application: at most
    #: this many before reading stops, and the bytes below which it resumes (a server may
    #: bound their count too: ``WebSocketSession.max_messages``, ``--ws-max-queue``).
    inbox_high: int = 1024 * 1024
    inbox_low: int = 256 * 1024
    #: At a graceful shutdown, how long a connection that has sent nothing yet still waits
    #: for its first request before it is closed like an idle one. A client that has just
    #: connected may have sent it already (closing at once loses it: clients retry only on
    #: reused connections); one that merely opened a connection ahead of need does not hold
    #: the shutdown up for a whole head timeout.
    fresh_grace_seconds: float = 1.0
    #: The close sent to sessions still open when the server shuts down (RFC 6455 7.4.1).
    going_away_code: int = 1001
    going_away_reason: str = "server shutting down"


RULES = ConnectionRules()


class ResponseCycle:
    """One response on its way from an application to a :class:`ServerConnection`.

    Each method returns the bytes to write (possibly empty); it raises
    :class:`~tether.errors.LocalProtocolError` for the application's misuse, leaving the
    cycle where it was, so the server can then call :meth:`fail`. ``date`` and ``server`` are
    the pairs :func:`tether.serving.with_server_headers` adds; ``closing`` adds
    ``Connection: close`` (the server is shutting down). ``extra`` are fields a server adds to
    every response that lacks them, its own and canned ones alike (``--header``, a request
    id); ``tag`` is whatever the server attached to this exchange (opaque here: the server
    reads it back when it logs the access line).
    """

    __slots__ = (
        "_conn",
        "_date",
        "_drop_body",
        "_extra",
        "_given",
        "_out",
        "_raw",
        "_reason",
        "_room",
        "_server",
        "_strip",
        "can_trail",
        "client",
        "closing",
        "head",
        "phase",
        "request",
        "response",
        "sent",
        "status",
        "tag",
        "trailers",
    )

    def __init__(
        self,
        conn: ServerConnection,
        request: Request,
        client: str,
        *,
        date: tuple[bytes, bytes] | None,
        server: tuple[bytes, bytes] | None,
        closing: bool = False,
        extra: Sequence[tuple[bytes, bytes]] = (),
        tag: object = None,
    ) -> None:
        self._conn = conn
        self._extra = extra
        self.tag = tag
        self.request = request
        #: The client as the access log names it (the forwarded one behind a trusted proxy).
        self.client = client
        self._date = date
        self._server = server
        self.closing = closing
        self.phase = _W
        #: The response held back until its first body bytes, once built (see _build).
        self.response: Response | None = None
        # The application's fields, reason and wish to drop Transfer-Encoding, as start()
        # took them: a response sent whole in one write goes to the core as these parts, in
        # one pass over the fields; anything else builds :attr:`response` from them first.
        self._given: Headers | None = None
        self._reason = b""
        self._strip = False
        # The fields of the head that went out; while _raw, the application's alone (a response
        # sent whole from its parts), completed when response_headers is read.
        self._out: Sequence[tuple[bytes, bytes]] = ()
        self._raw = False
        self.status = 0
        #: Body bytes handed out for writing.
        self.sent = 0
        #: The application asked to send trailers; ``can_trail`` says whether they can go
        #: (HTTP/1.1, not HEAD, a chunked body): elsewhere they are dropped, as ASGI allows.
        self.trailers = False
        self.can_trail = False
        #: The request was HEAD.
        self.head = request.method == b"HEAD"
        self._drop_body = self.head
        #: Body bytes the declared Content-Length still allows (None: no limit known here).
        self._room: int | None = None

    def _move(self, step: _Step) -> None:
        try:
            self.phase = _TRANSITIONS[(self.phase, step)]
        except KeyError:
            raise LocalProtocolError(
                f"cannot {step.value} a response in phase {self.phase.value}"
            ) from None

    @property
    def response_headers(self) -> Sequence[tuple[bytes, bytes]]:
        """The fields of the head that went out (read by a custom access-log format)."""
        out = self._out
        if self._raw:
            # Sent whole from its parts: the list is made only when someone reads it.
            out = self._out = self._fields(list(out))
            self._raw = False
        return out

    @property
    def committed(self) -> bool:
        """Whether bytes of the response head may have left (a 500 is no longer possible)."""
        return self.phase is _S or self.phase is _C or self.phase is _F

    @property
    def complete(self) -> bool:
        """Whether the whole response is out."""
        return self.phase is _C

    # -- the application's response --------------------------------------------------------------

    def start(
        self,
        status: int,
        headers: Iterable[tuple[bytes, bytes]],
        reason: bytes = b"",
        *,
        trailers: bool = False,
        ignore_transfer_encoding: bool = False,
    ) -> None:
        """Take the response head (nothing to write yet).

        ``ignore_transfer_encoding`` drops an application's ``Transfer-Encoding`` (the ASGI
        spec: the server must ignore it; framing is the server's). A 2xx to CONNECT raises
        :class:`~tether.errors.LocalProtocolError`: the servers do not tunnel (answer 501).
        """
        phase = self.phase
        if phase is not _W and phase is not _H:
            self._move(_Step.START)  # raises
        if 200 <= status < 300 and self.request.method == b"CONNECT":
            # A 2xx to CONNECT makes the connection a tunnel (RFC 9110 9.3.6), which neither
            # ASGI nor WSGI can carry: refused like any other misuse (the server answers 500).
            raise LocalProtocolError("a 2xx to CONNECT opens a tunnel, which this server lacks")
        self.phase = _H
        self.status = status
        # A copy: what the application does to its list after this call changes nothing.
        given = list(headers)
        if _COMPILED and not _all_tuples(given):
            given = _pairs(given)
        self._given = given
        self._reason = reason
        self._strip = ignore_transfer_encoding
        self.trailers = trailers
        self.response = None

    def _fields(self, given: Headers) -> Headers:
        """The fields of the response: ``given`` (Transfer-Encoding dropped if asked) with the
        server's extra fields, Date and Server where it lacks them, ``Connection: close``."""
        out = (
            [h for h in given if h[0].lower() != b"transfer-encoding"]
            if self._strip
            else list(given)
        )
        if self._extra:
            _add_missing(out, self._extra)
        out = with_server_headers(out, self._date, self._server)
        if self.closing:
            out.append((b"connection", b"close"))
        return out

    def _build(self) -> None:
        """Make :attr:`response` from what start() took, and what it implies for the body (once:
        nothing to do when it is made, or when start() was not called)."""
        given = self._given
        if given is None:
            return
        status = self.status
        length: bytes | None = None
        for name, value in given:
            if len(name) == 14 and name.lower() == b"content-length":
                length = value
        no_body = status in _NO_BODY_STATUSES or status < 200
        self._drop_body = self.head or no_body
        self._room = (
            0 if no_body else int(length) if length is not None and length.isdigit() else None
        )
        self.can_trail = (
            self.trailers
            and length is None
            and not self._drop_body
            and self.request.http_version == b"1.1"
        )
        self.response = Response(status, self._fields(given), self._reason)
        self._given = None

    def body(self, data: bytes, more: bool = False, *, whole: bool = False) -> bytes:
        """Bytes carrying ``data``; the response ends too unless ``more`` or trailers follow.

        ``whole``: ``data`` is the entire body, so a missing ``Content-Length`` is added
        (a WSGI list result). A body longer than the declared length raises before the head
        is committed, so the first write of too much still becomes a 500.
        """
        given = self._given
        if given is not None:
            if not more and not self.trailers and not self._extra:
                # The whole response in one write (the common case): its parts go to the
                # core, which checks them and adds the server's fields in one pass.
                date = self._date
                server = self._server
                out = self._conn.respond_fields(
                    self.status,
                    given,
                    data,
                    reason=self._reason,
                    date=None if date is None else date[1],
                    server=None if server is None else server[1],
                    close=self.closing,
                    strip_transfer_encoding=self._strip,
                    declare_length=whole,
                )
                self._given = None
                self._out = given  # response_headers adds the server's fields if it is read
                self._raw = True
                self.sent += len(data)
                self.phase = _C
                return out
            self._build()
        room = self._room
        size = len(data)
        if room is not None and not self.head:
            if size > room:
                raise LocalProtocolError(
                    f"a {self.status} response cannot have a body"
                    if self._drop_body
                    else "the response body is longer than its Content-Length"
                )
            if not more and not self.trailers and size < room:
                raise ShortBody(
                    f"the response body is {room - size} bytes shorter than its Content-Length"
                )
        response = self.response
        if response is not None and not more and not self.trailers:
            # The whole response in one write (the common case): one call into the core.
            if whole:
                response = self._with_length(response, size)
            out = self._conn.respond(response, data)
            self.response = None
            self._out = response.headers
            if room is not None:
                self._room = room - size
            self.sent += size
            self.phase = _C
            return out
        if response is not None:
            if whole:
                out = self._head(size)
            else:
                # _head(None), inlined: every response's first body write comes here.
                out = self._conn.send(response)
                self.response = None
                self._out = response.headers
            self.phase = _S
        elif self.phase is _S:
            out = b""
        else:
            self._move(_Step.BODY)  # raises
        if room is not None:
            self._room = room - size
        conn = self._conn
        if data:
            out += conn.send(Data(data))
            self.sent += size
        if not more and not self.trailers:
            out += conn.send(_END)
            self.phase = _C
        return out

    def end(self, trailers: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
        """Bytes that end the response, with ``trailers`` where they can go (else dropped)."""
        out = self._head(None)
        self._move(_Step.END)
        return out + self._conn.send(EndOfMessage(_pairs(trailers) if self.can_trail else []))

    def _head(self, whole: int | None) -> bytes:
        self._build()
        response = self.response
        if response is None:
            if self.phase is _W:
                raise LocalProtocolError("the response has not started")
            return b""
        if whole is not None:
            response = self._with_length(response, whole)
        out = self._conn.send(response)
        self.response = None
        self._out = response.headers
        return out

    def _with_length(self, response: Response, size: int) -> Response:
        """``response`` declaring a body of ``size`` bytes, when it declares none and has one."""
        if self._room is not None or self._drop_body:
            return response
        return _declaring(response, size)

    def file_head(self, size: int) -> bytes:
        """Commit the head for a file body of ``size`` bytes sent apart (``os.sendfile``).

        The length is declared when the application declared none (so a HEAD response carries
        it too); a declared length smaller than the file wins, and :attr:`file_room` says it.
        """
        self._build()
        response = self.response
        if (
            response is not None
            and self._room is None
            and not (self.status < 200 or self.status in _NO_BODY_STATUSES)
        ):
            self._room = size
            self.response = _declaring(response, size)
        out = self._head(None)
        self._move(_Step.BODY)
        return out

    def switch(self, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
        """The bytes of the ``101 Switching Protocols`` that accepts a WebSocket; the HTTP
        response is then complete (what follows is the session's)."""
        self._move(_Step.CANNED)
        self.response = None
        self._given = None
        self.status = 101
        fields = with_server_headers(_pairs(headers), self._date, self._server)
        if self._extra:
            _add_missing(fields, self._extra)
        self._out = fields
        return self._conn.send(InformationalResponse(101, fields))

    def file_sent(self, size: int) -> None:
        """Count ``size`` body bytes the server sent apart (after :meth:`file_head`)."""
        self.sent += size
        if self._room is not None:
            self._room -= size

    @property
    def file_room(self) -> int | None:
        """Body bytes the declared Content-Length allows (None when not known)."""
        self._build()
        return self._room

    # -- what the server decides -----------------------------------------------------------------

    def canned(self, response: Response, body: bytes) -> bytes | None:
        """A complete server-made response (503 overload, 500 failure), or None when the
        head is already committed (then the connection must close: see :meth:`fail`)."""
        if self.committed:
            return None
        headers = with_server_headers(response.headers, self._date, self._server)
        if self._extra:
            _add_missing(headers, self._extra)
        try:
            out = self._conn.send(Response(response.status_code, headers))
            out += self._conn.send(Data(body)) + self._conn.send(EndOfMessage())
        except ProtocolError:
            self._conn.send_failed()
            self.phase = CyclePhase.FAILED
            return None
        self._move(_Step.CANNED)
        self.response = None
        self._given = None
        self._out = headers
        self.status = response.status_code
        self.sent = len(body) if not self.head else 0
        return out

    def fail(self) -> bytes | None:
        """The application failed: the bytes of a 500 while nothing is committed; else None,
        and the connection is marked unusable (the server closes it)."""
        if self.phase is _C:
            return b""
        out = self.canned(*internal_error_response())
        if out is None:
            self._conn.send_failed()
            self.phase = CyclePhase.FAILED
        return out

    def log_line(self, note: str = "") -> str:
        """The access-log line: the status the client got (0 when none), body bytes sent, and
        ``note`` (a WebSocket session's close code and duration, say)."""
        status = self.status if self.committed else 0
        return access_log_line(self.client, self.request, status, self.sent, note)


def _declaring(response: Response, size: int) -> Response:
    """``response`` with a ``Content-Length`` of ``size`` added to its fields."""
    headers = [*response.headers, (b"content-length", b"%d" % size)]
    return Response(response.status_code, headers, response.reason)


# Built by mypyc (TETHER_COMPILE=1): the core then reads a header field only as a tuple, where
# pure Python takes any pair (ASGI allows a list). Only that build needs the fields turned
# into tuples, and only there is checking them cheap (a C loop, not a Python one).
_COMPILED = not __file__.endswith(".py")


def _all_tuples(fields: Sequence[object]) -> bool:
    return all(type(pair) is tuple for pair in fields)


def _pairs(fields: Iterable[object]) -> Headers:
    """A list of ``fields``, each a tuple. ASGI lets an application give a field as any pair
    of byte strings (a list, often); the core reads tuples when compiled, and pure Python
    takes both: this keeps the two builds alike."""
    return [tuple(cast("Iterable[bytes]", pair)) for pair in fields]  # type: ignore[misc]


def _add_missing(headers: Headers, extra: Sequence[tuple[bytes, bytes]]) -> None:
    """Append the ``extra`` fields (lowercase names) whose name ``headers`` lacks."""
    present = {name.lower() for name, _ in headers}
    headers.extend(pair for pair in extra if pair[0] not in present)
