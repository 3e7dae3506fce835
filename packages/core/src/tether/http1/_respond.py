"""The response half of a server connection: events in, bytes out.

:class:`ResponseSide` is the part of :class:`~tether.http1.ServerConnection`
that turns response events into bytes (``send``, ``frame_body``,
``error_response``): it checks each event against our state in the table of
``_state.py`` and against what the request allows (HEAD, HTTP/1.0, 100-continue,
an upgrade, CONNECT). Reading requests, cycles and time are in
``_connection.py``, which builds on this class.
"""

from __future__ import annotations

from tether.errors import LocalProtocolError, ProtocolError, ShortBody
from tether.http1._common import LAST_CHUNK, ConnectionBase, chunk, last_chunk
from tether.http1._events import (
    Data,
    EndOfMessage,
    Headers,
    InformationalResponse,
    Response,
    SendEvent,
)
from tether.http1._receive import RequestReader
from tether.http1._send import (
    OWNED,
    Framing,
    fields_ok,
    status_line,
    write_informational,
    write_response,
    write_tunnel,
)
from tether.http1._state import OUR_TRANSITIONS, THEIR_TRANSITIONS, HTTPState, _Move, column
from tether.http1._tables import P_DONE

_IDLE = HTTPState.IDLE
_SEND_BODY = HTTPState.SEND_BODY
_DONE_STATE = HTTPState.DONE
_SEND_RESPONSE = HTTPState.SEND_RESPONSE
_MUST_CLOSE = HTTPState.MUST_CLOSE
_LENGTH = Framing.LENGTH
_CHUNKED = Framing.CHUNKED
_CLOSE = Framing.CLOSE
_DROP = Framing.DROP
_NONE = Framing.NONE
_M_FAIL = _Move.FAIL
_M_INFORMATIONAL = _Move.INFORMATIONAL
_M_NO_REUSE = _Move.NO_REUSE
_M_RESPONSE = _Move.RESPONSE
_M_RESPONSE_DONE = _Move.RESPONSE_DONE
_M_SWITCH = _Move.SWITCH
# Every write of _their_state or _our_state below is a look-up in these tables (a test checks
# this over the spec vectors and Hypothesis streams).
_THEIRS = THEIR_TRANSITIONS
_OURS = OUR_TRANSITIONS
_OURS_ON_RESPONSE = column(OUR_TRANSITIONS, _Move.RESPONSE)
_OURS_ON_RESPONSE_DONE = column(OUR_TRANSITIONS, _Move.RESPONSE_DONE)


class ResponseSide(ConnectionBase):
    """Sending responses on a server connection (internal base of ServerConnection, whose
    ``__init__`` sets these attributes: ``_reader``, ``_framing``, ``_remaining`` and
    ``_expects_continue``)."""

    __slots__ = ("_expects_continue", "_framing", "_reader", "_remaining")

    _reader: RequestReader
    _framing: Framing
    _remaining: int
    _expects_continue: bool

    @property
    def expects_continue(self) -> bool:
        """Whether the request asked for ``100-continue`` and no 100 or final response went out.

        Send ``InformationalResponse(100)`` when the application first reads the
        body (or a final response at once to refuse it; the connection then closes
        unless the body was already complete).
        """
        return self._expects_continue

    @property
    def response_started(self) -> bool:
        """Whether a final response head has been sent for the current request."""
        return self._our_state in (_SEND_BODY, _DONE_STATE, _MUST_CLOSE)

    def send(self, event: SendEvent) -> bytes:
        """Return the bytes that carry ``event`` to the peer.

        Raises :class:`LocalProtocolError` for an event that is illegal now (a body
        longer than its Content-Length, a second response, invalid fields, ...).

        A 1xx other than 101 to an HTTP/1.0 client is checked like any other, then
        dropped: the result is ``b""`` (RFC 9110 15.2: "A server MUST NOT send a 1xx
        response to an HTTP/1.0 client"). A 2xx to CONNECT, once the request's
        ``EndOfMessage`` has been read, turns the connection into a tunnel as a
        101 does: both states become ``SWITCHED_PROTOCOL`` and the bytes that
        followed the request are in :attr:`trailing_data`.
        """
        cls = type(event)
        if cls is Data:
            return self._send_data(event.data)  # type: ignore[union-attr]
        if cls is Response:
            return self._send_response(event)  # type: ignore[arg-type]
        if cls is EndOfMessage:
            return self._send_end(event.trailers)  # type: ignore[union-attr]
        if cls is InformationalResponse:
            return self._send_informational(event)  # type: ignore[arg-type]
        raise LocalProtocolError(f"cannot send {event!r}")

    def _move_ours(self, move: _Move) -> None:
        try:
            self._our_state = _OURS[(self._our_state, move)]
        except KeyError:
            self._ours_after(move)  # raises the LocalProtocolError

    def _ours_after(self, move: _Move) -> HTTPState:
        """Our state after ``move``, or LocalProtocolError if the table has no such move."""
        try:
            return _OURS[(self._our_state, move)]
        except KeyError:
            raise LocalProtocolError(
                f"cannot send {move.value.lower()} in state {self._our_state.value}"
            ) from None

    def respond(self, response: Response, body: bytes = b"") -> bytes:
        """Return the bytes of a whole response: its head, ``body`` and its end.

        The same bytes and checks as ``send(response) + send(Data(body)) +
        send(EndOfMessage())``, in one call, and all or nothing: a
        :class:`LocalProtocolError` (invalid fields, a ``body`` that does not match the
        Content-Length, a body on a 204 or 304) leaves the connection as it was, so the
        caller may still send another response. For HEAD the body is dropped, as
        ``send(Data(body))`` drops it. A 2xx to CONNECT opens a tunnel, which has no end: use
        :meth:`send` for it.
        """
        if type(response) is not Response:
            raise LocalProtocolError(f"respond() takes a Response, not {response!r}")
        return self._respond(
            response.status_code, response.headers, response.reason, body, None, None, False
        )

    def respond_fields(
        self,
        status_code: int,
        headers: Headers,
        body: bytes = b"",
        *,
        reason: bytes = b"",
        date: bytes | None = None,
        server: bytes | None = None,
        close: bool = False,
        strip_transfer_encoding: bool = False,
        declare_length: bool = False,
    ) -> bytes:
        """:meth:`respond` for a response given as its parts, with a server's defaults.

        The same checks and bytes as ``respond(Response(status_code, fields, reason), body)``
        where ``fields`` are ``headers`` with, in one pass over them and no event built:
        ``Date: date`` and ``Server: server`` added when they have no such field (as
        :func:`tether.serving.with_server_headers` adds them), ``Connection: close`` when
        ``close``, any ``Transfer-Encoding`` dropped when ``strip_transfer_encoding`` (an ASGI
        server must ignore the application's), and ``Content-Length: len(body)`` added when
        ``declare_length`` and the response declares no length and may have a body (a body
        known whole, such as a WSGI list). All or nothing, as :meth:`respond`.
        """
        return self._respond(
            status_code,
            headers,
            reason,
            body,
            date,
            server,
            close,
            strip_transfer_encoding,
            len(body) if declare_length else None,
        )

    def _respond(  # noqa: PLR0917 - both callers pass every argument, positionally
        self,
        status_code: int,
        headers: Headers,
        reason: bytes,
        body: bytes,
        date: bytes | None,
        server: bytes | None,
        close: bool,
        strip_transfer_encoding: bool = False,
        declare: int | None = None,
    ) -> bytes:
        """:meth:`respond` and :meth:`respond_fields`: the bytes, and the state moved past."""
        if self._our_state not in _OURS_ON_RESPONSE:
            self._ours_after(_M_RESPONSE)  # raises the LocalProtocolError
        reader = self._reader
        if reader.connect and 200 <= status_code < 300:
            raise LocalProtocolError("a 2xx to CONNECT opens a tunnel: send() it")
        head, framing, length, keep_alive = write_response(
            status_code,
            headers,
            reason,
            reader.head_request,
            reader.http10,
            # As _write_head decides it, and a server's close.
            self._keep_alive
            and not close
            and not (self._expects_continue and reader.phase is not P_DONE),
            date,
            server,
            strip_transfer_encoding,
            declare,
        )
        size = len(body)
        if framing is _LENGTH:
            if size != length:
                raise LocalProtocolError(
                    f"the body is {size} bytes, the Content-Length says {length}"
                )
            out = head + body if size else head
        elif framing is _CHUNKED:
            out = b"%s%x\r\n%s\r\n0\r\n\r\n" % (head, size, body) if size else head + LAST_CHUNK
        elif framing is _CLOSE:
            out = head + body
        elif framing is _NONE and size:
            raise LocalProtocolError("this response cannot have a body (1xx, 204 or 304)")
        else:  # _DROP (HEAD) or no body
            out = head
        # Nothing can fail past this point: the state moves through the table as the three
        # send() calls would move it.
        self._expects_continue = False
        self._framing = framing
        self._remaining = 0
        self._our_state = _OURS_ON_RESPONSE_DONE[_OURS_ON_RESPONSE[self._our_state]]
        if not keep_alive or framing is _CLOSE:
            keep_alive = False
            self._our_state = _OURS[(self._our_state, _M_NO_REUSE)]
        self._keep_alive = keep_alive
        return out

    def _send_response(self, event: Response) -> bytes:
        if self._our_state not in _OURS_ON_RESPONSE:
            self._ours_after(_M_RESPONSE)  # raises the LocalProtocolError
        if self._reader.connect and 200 <= event.status_code < 300:
            return self._switch(write_tunnel(event.status_code, event.headers, event.reason))
        # A LocalProtocolError here leaves everything as it was: the caller may still send a
        # valid response.
        head, framing, length, keep_alive = self._write_head(event)
        self._expects_continue = False
        self._our_state = _OURS_ON_RESPONSE[self._our_state]
        self._keep_alive = keep_alive
        self._framing = framing
        self._remaining = length
        return head

    def _write_head(self, event: Response) -> tuple[bytes, Framing, int, bool]:
        """The head's bytes, framing, length and keep-alive (no state moves)."""
        reader = self._reader
        return write_response(
            event.status_code,
            event.headers,
            event.reason,
            head_request=reader.head_request,
            http10=reader.http10,
            # Waiting for 100-continue, the client may or may not send the body it held back:
            # the next request boundary is unknowable, so this connection ends here.
            keep_alive=self._keep_alive
            and not (self._expects_continue and reader.phase is not P_DONE),
        )

    def _send_informational(self, event: InformationalResponse) -> bytes:
        status = event.status_code
        if status == 101:
            if not self._reader.upgrade:
                raise LocalProtocolError(
                    "101 sent for a request that did not ask to upgrade (or in HTTP/1.0)"
                )
            return self._switch(write_informational(status, event.headers, event.reason))
        head = write_informational(status, event.headers, event.reason)
        self._move_ours(_M_INFORMATIONAL)
        if status == 100:
            self._expects_continue = False
        if self._reader.http10:
            # RFC 9110 15.2: "A server MUST NOT send a 1xx response to an HTTP/1.0 client."
            # Dropped rather than refused: a 100 or 103 is advice the client can do without.
            return b""
        return head

    def _switch(self, head: bytes) -> bytes:
        """After a 101, or a 2xx to CONNECT: the rest of the bytes belong to another protocol."""
        reader = self._reader
        if reader.phase is not P_DONE:
            raise LocalProtocolError(
                "protocol switch before the request was complete (read its EndOfMessage first)"
            )
        self._move_ours(_M_SWITCH)
        self._their_state = _THEIRS[(self._their_state, _M_SWITCH)]
        self._expects_continue = False
        self._trailing = reader.take_remaining()
        return head

    def _send_data(self, data: bytes) -> bytes:
        if self._our_state is not _SEND_BODY:
            raise LocalProtocolError(f"cannot send body data in state {self._our_state.value}")
        framing = self._framing
        if framing is _LENGTH:
            remaining = self._remaining - len(data)
            if remaining < 0:
                raise LocalProtocolError("body is longer than the Content-Length sent")
            self._remaining = remaining
            return data
        if framing is _CHUNKED:
            return chunk(data)
        if framing is _CLOSE:
            return data
        if framing is _DROP:
            return b""
        if data:
            raise LocalProtocolError("this response cannot have a body (1xx, 204 or 304)")
        return b""

    def frame_body(self, length: int) -> tuple[bytes, bytes] | None:
        """Account for ``length`` body bytes that the caller sends itself.

        For bodies that bypass :meth:`send`, such as a file sent with
        ``os.sendfile``: returns the framing to write before and after those
        bytes (a chunk header and CRLF when chunked, else empty), or ``None``
        when they must not be sent at all (the response to HEAD). Raises
        :class:`LocalProtocolError` for more than the Content-Length sent, or
        for a body on a 1xx, 204 or 304 response.
        """
        if self._our_state is not _SEND_BODY:
            raise LocalProtocolError(f"cannot send body data in state {self._our_state.value}")
        if length < 0:
            raise LocalProtocolError("a body length cannot be negative")
        framing = self._framing
        if framing is _LENGTH:
            if length > self._remaining:
                raise LocalProtocolError("body is longer than the Content-Length sent")
            self._remaining -= length
            return (b"", b"")
        if framing is _CHUNKED:
            return (b"%x\r\n" % length, b"\r\n") if length else (b"", b"")
        if framing is _CLOSE:
            return (b"", b"")
        if framing is _NONE and length:
            raise LocalProtocolError("this response cannot have a body (1xx, 204 or 304)")
        return None

    def _send_end(self, trailers: Headers) -> bytes:
        framing = self._framing
        if self._our_state is _SEND_BODY:
            if framing is _LENGTH and self._remaining:
                raise ShortBody(
                    f"body is {self._remaining} bytes shorter than the Content-Length sent"
                )
            if trailers and framing is not _CHUNKED:
                raise LocalProtocolError("trailers need a chunked response")
        # Checked before any state moves, so a bad trailer leaves the response open.
        out = last_chunk(trailers) if framing is _CHUNKED and trailers else LAST_CHUNK
        try:
            self._our_state = _OURS_ON_RESPONSE_DONE[self._our_state]
        except KeyError:
            self._ours_after(_M_RESPONSE_DONE)  # raises the LocalProtocolError
        if not self._keep_alive or framing is _CLOSE:
            self._keep_alive = False
            self._our_state = _OURS[(self._our_state, _M_NO_REUSE)]
        return out if framing is _CHUNKED else b""

    def send_failed(self) -> None:
        """Mark the connection unusable after the application failed mid-response."""
        self._our_state = _OURS[(self._our_state, _M_FAIL)]
        self._keep_alive = False

    def error_response(self, error: BaseException, headers: Headers = ()) -> bytes:
        """Bytes of a complete error response for ``error``, or ``b""`` if too late.

        For a :class:`ProtocolError` the response has status ``error.status_hint``
        and a short plain-text body naming the problem. Any other exception (the
        application failed: ``except Exception as exc: conn.error_response(exc)``)
        gets a 500 whose body says only "Internal Server Error", never the
        exception's text. Either way the response carries
        ``Connection: close``, and any extra ``headers`` (such
        as Date and Server). Extra fields pass the checks of :meth:`send`: a name
        that is not a token, a value holding CR, LF, NUL or another control byte,
        or a field the core writes itself (Content-Length, Transfer-Encoding,
        Connection) raises :class:`LocalProtocolError`. The answer to a HEAD
        request carries the Content-Length of the body a GET would get, and no
        body (RFC 9110 9.3.2). Close the connection after sending it.
        """
        try:
            fields = b"".join([b"%s: %s\r\n" % (name, value) for name, value in headers])
        except TypeError:
            raise LocalProtocolError("header names and values must be bytes") from None
        if headers and (
            not fields_ok(headers, fields, len(headers))
            or not OWNED.isdisjoint([name.lower() for name, _ in headers])
        ):
            raise LocalProtocolError(
                "invalid extra field for an error response (CR, LF, NUL, not a token, "
                "or Content-Length, Transfer-Encoding or Connection, which the core writes)"
            )
        self._keep_alive = False
        too_late = self._our_state not in (_IDLE, _SEND_RESPONSE)
        self._our_state = _OURS[(self._our_state, _M_FAIL)]
        if too_late:
            return b""
        if isinstance(error, ProtocolError):
            status = error.status_hint
            if not 400 <= status < 600:
                status = 500 if isinstance(error, LocalProtocolError) else 400
            line = status_line(status, b"")
            phrase = line[13:-2].decode("latin-1")
            body = f"{status} {phrase}: {error.message}\n".encode("utf-8", "replace")
        else:
            line = status_line(500, b"")
            body = b"500 Internal Server Error\n"
        head = (
            b"%scontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n%s"
            b"connection: close\r\n\r\n" % (line, len(body), fields)
        )
        # The reader notes the method of the head it read last, even of one it refused.
        if self._reader.head_request:
            return head
        return head + body
