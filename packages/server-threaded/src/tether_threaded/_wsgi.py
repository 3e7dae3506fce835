"""WSGI (PEP 3333): the environ, ``start_response``, ``write()``, and running one request.

The loop builds the environ (it already holds the parsed request) and a worker runs
:meth:`Exchange.run`. Small responses leave in one ``send``: a list or tuple result becomes one
head-plus-body-plus-end write; a streamed one sends its head with the first non-empty piece.
The result's ``close()`` is always called. ``wsgi.file_wrapper`` results of regular files go
out with ``os.sendfile`` on plain sockets, without the connection's lock held during the call.
No response waits on a slow client in a worker (only the legacy ``write()`` callable does):
a streamed or file response parks until the client has read, and the worker moves on.
"""

from __future__ import annotations

import io
import logging
import os
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from typing import IO, Any

from tether.errors import ShortBody, cut_short
from tether.http1 import InformationalResponse, Request, date_header
from tether.serving_cycle import CyclePhase, ResponseCycle
from tether.serving_wsgi import (
    ExcInfo,
    FileWrapper,
    Write,
    close_result,
    request_environ,
    start_response,
    traceback_response,
)
from tether.websocket import HandshakeError
from tether.websocket.handshake import wants_websocket
from tether_server.accesslog import peer_text
from tether_server.forwarded import apply_forwarding
from tether_server.server_metrics import ServerMetrics
from tether_server.tagging import log_access, tagged
from tether_server.wsgi_body import BodyBuffer
from tether_threaded._connection import Connection, Host
from tether_threaded._input import ClientDisconnected, Source, StreamedBody
from tether_threaded._transport import OUT_HIGH
from tether_threaded._websocket import Upgrade, WebSocketClosed

_log = logging.getLogger("tether.error")
_access = logging.getLogger("tether.access")

#: Most bytes one ``os.sendfile`` call is asked to move.
_BLOCK = 1 << 20


class _FileSend:
    """Where the body of a file sent with ``os.sendfile`` stands."""

    __slots__ = ("after", "count", "done", "fileno", "offset")

    def __init__(self, fileno: int, offset: int, count: int, after: bytes) -> None:
        self.fileno = fileno
        #: The file's position where the body starts, its length, and the bytes sent so far.
        self.offset = offset
        self.count = count
        self.done = 0
        #: The framing after the body (a chunked body's end).
        self.after = after


def _regular_file(wrapper: FileWrapper) -> tuple[int, int, int] | None:
    """A wrapped regular file's descriptor, position and bytes left; None for other
    file-likes (a socket, a pipe, a ``BytesIO``: sent in blocks like any streamed result)."""
    filelike = wrapper.filelike
    try:
        fileno = filelike.fileno()
        info = os.fstat(fileno)
        offset = filelike.tell()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return fileno, offset, max(0, info.st_size - offset)


def early_hints(cycle: ResponseCycle, conn: Connection, links: Iterable[str]) -> None:
    """``environ["tether.early_hints"](links)``: a ``103 Early Hints`` (RFC 8297) with one
    ``Link`` field per entry, before ``start_response``; nothing reaches an HTTP/1.0 client
    (RFC 9110 15.2: the core drops it). The fields pass the core's checks (no CR/LF)."""
    if cycle.phase is not CyclePhase.WAITING:
        raise AssertionError("early hints go before start_response() (PEP 3333 order)")
    fields = [(b"link", link.encode("latin-1")) for link in links]
    with conn.lock:
        if conn.closing:
            raise ClientDisconnected("the connection is closing")
        out = conn.core.send(InformationalResponse(103, fields))
        if out:
            conn.write(out, wait=True)


class Exchange:
    """One request on its way through the WSGI application.

    What the response may do next (and the 500, the access line) is decided by :attr:`cycle`,
    the core's :class:`tether.serving_cycle.ResponseCycle`; this class moves the bytes."""

    __slots__ = (
        "chunks",
        "conn",
        "cycle",
        "environ",
        "file",
        "gathered",
        "has_body",
        "input",
        "loop",
        "request",
        "result",
        "reused",
        "started",
        "upgrade",
    )

    #: A streamed response: the application's result and the iterator being sent, kept while
    #: the response is parked on a slow reader (set by _run before _pump reads them); for a
    #: file sent with ``os.sendfile`` no iterator, and where the file stands instead.
    result: Any
    chunks: Iterator[bytes] | None
    file: _FileSend | None
    #: --metrics-port (only then set): when the head came, and whether the connection is reused.
    started: float
    reused: bool

    def __init__(self, loop: Host, conn: Connection, request: Request) -> None:
        self.loop = loop
        self.conn = conn
        self.request = request
        base = conn.base_environ
        self.environ = environ = request_environ(base, request)
        client = conn.client
        proxies = loop.proxies
        if proxies is not None:
            # A trusted proxy's forwarding fields applied (--proxy-headers), a client's removed.
            apply_forwarding(environ, proxies)
            address = environ.get("REMOTE_ADDR")
            if address != base.get("REMOTE_ADDR") and address is not None:
                # A trusted proxy named the client (apply_forwarding sets its port with it).
                client = peer_text(address, environ["REMOTE_PORT"])
        if "REMOTE_ADDR" not in environ:
            # A Unix socket peer has no address, but CGI (RFC 3875 4.1.8) says REMOTE_ADDR is
            # always set: "localhost", as waitress's Unix server has it (gunicorn sends "").
            environ["REMOTE_ADDR"] = "localhost"
        if loop.request_budget is not None:
            loop.request_budget.spend()  # --limit-max-requests
        if loop.metrics is not None:
            self.started = time.monotonic()
            self.reused = conn.core.request_count > 1
        date = date_header(time.time()) if loop.date_header else None
        tag = loop.tagger.tag(request.headers) if loop.tagger is not None else None
        self.cycle = ResponseCycle(
            conn.core,
            request,
            client,
            date=date,
            server=loop.server_header,
            extra=tag.headers if tag is not None else (),
            tag=tag,
        )
        if tag is not None:
            environ.update(tag.app_entries())
        #: Whether the request has a body (RFC 9112 6.3: Content-Length or Transfer-Encoding).
        self.has_body = "CONTENT_LENGTH" in environ or "HTTP_TRANSFER_ENCODING" in environ
        #: The body handed to the application (closed after the response).
        self.input: IO[bytes] | StreamedBody | None = None
        #: The gathered body's buffer, whose share of the server's spool budget is given back
        #: once :attr:`input` is closed.
        self.gathered: BodyBuffer | None = None
        # Bound to the cycle and the connection, not to this object: the environ holding a
        # method of the exchange that holds the environ would make each request a reference
        # cycle, freed only by the cyclic collector (a tenth of the server's CPU under load).
        environ["tether.early_hints"] = partial(early_hints, self.cycle, conn)
        self.upgrade: Upgrade | None = None
        if "HTTP_UPGRADE" in environ and wants_websocket(request.headers):
            self.upgrade = environ["tether.websocket"] = Upgrade(conn, request, self.cycle)

    def stream_body(self, source: Source) -> StreamedBody:
        """``--request-body stream``: ``wsgi.input`` is the body as the loop reads it (a chunked
        one has no ``CONTENT_LENGTH``; ``wsgi.input_terminated`` says it ends)."""
        self.input = self.environ["wsgi.input"] = body = StreamedBody(source)
        return body

    def record(self, metrics: ServerMetrics) -> None:
        """Count this request, its status and duration (``--metrics-port``)."""
        metrics.request(self.request.method, self.cycle.status, self.started, self.reused)

    # -- the application's callables ------------------------------------------------------------

    def start_response(
        self, status: str, headers: Iterable[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Write:
        """PEP 3333 ``start_response`` (:func:`tether.serving_wsgi.start_response`)."""
        if self.loop.drain is not None:
            # Shutting down: tell the client this connection ends with this response.
            self.cycle.closing = True
        start_response(self.cycle, status, headers, exc_info)
        return self.write

    def write(self, data: bytes, wait: bool = True) -> None:
        """Send a piece of the body now (the PEP's ``write()`` callable): it waits while the
        client is slow, as the PEP's write must not return before the data is on its way (a
        streamed result is sent with ``wait=False``: it parks instead)."""
        cycle = self.cycle
        if cycle.phase is CyclePhase.WAITING:
            raise AssertionError("write() called before start_response()")
        if type(data) is not bytes:
            raise TypeError(f"response body pieces must be bytes, not {type(data).__name__}")
        conn = self.conn
        with conn.lock:
            if conn.closing:
                raise ClientDisconnected("the connection is closing")
            out = cycle.body(data, True)
            try:
                conn.write(out, wait=wait)
            except ClientDisconnected:
                cycle.sent -= len(data)
                raise

    # -- running --------------------------------------------------------------------------------

    def run(self, resumed: bool = False) -> None:
        """Run the application and send its response (worker thread); ``resumed``: go on with
        a parked streamed response instead. Unless the response parks again, end the exchange.
        """
        finished = True
        try:
            if not resumed:
                finished = self._run()
            else:
                finished = self._pump() if self.chunks is not None else self._pump_file()
        except ClientDisconnected as exc:
            conn = self.conn
            _log.debug("%s: %s", conn.client, exc)
            with conn.lock:
                conn.close_soon()
        except BaseException as exc:
            conn, upgrade = self.conn, self.upgrade
            # BaseException too: a SystemExit from the app must still end its response (else the
            # connection stays busy and unregistered, a leaked descriptor); the thread lives on.
            if upgrade is not None and upgrade.accepted and isinstance(exc, WebSocketClosed):
                # The peer closed (or left) and the app let receive()'s WebSocketClosed end it,
                # as a plain `while True: ws.send(ws.receive())` loop does: the session's end,
                # not an application error.
                _log.debug("%s: WebSocket closed by the peer: %s", conn.client, exc)
                upgrade.finish()
            elif upgrade is not None and upgrade.accepted:
                _log.error("Exception in the WebSocket application", exc_info=exc)
                upgrade.finish(1011)
            elif upgrade is not None and self.cycle.complete and isinstance(exc, HandshakeError):
                _log.debug("%s: WebSocket handshake refused: %s", conn.client, exc)
            else:
                self._fail(exc)
        finally:
            if finished:
                upgrade = self.upgrade
                stream = self.input
                if stream is not None:
                    self.input = None
                    stream.close()
                    if self.gathered is not None:
                        self.gathered.release()
                loop = self.loop
                if loop.metrics is not None:
                    self.record(loop.metrics)
                loop.release(upgrade is not None)
                if upgrade is not None and upgrade.accepted:
                    upgrade.log_access(loop.access_log)
                elif loop.access_log and _access.isEnabledFor(logging.INFO):
                    log_access(_access, self.cycle, environ=self.environ)

    def _run(self) -> bool:
        result = self.loop.app(self.environ, self.start_response)
        kind = type(result)
        accepted = self.upgrade is not None and self.upgrade.accepted
        if (kind is list or kind is tuple) and not accepted:
            # The usual result, the whole body at once (a list or a tuple has no close()).
            self._send_all(result)  # type: ignore[arg-type]
            return True
        if accepted:  # the result of a WebSocket application is ignored (closed here)
            close_result(result)
            self._end()
            return True
        source = None
        if kind is FileWrapper and not self.conn.tls and self.cycle.status:
            source = _regular_file(result)  # type: ignore[arg-type]
        self.result = result
        if source is None:
            # Streamed: sent piece by piece, parked (without this worker) on a slow reader.
            self.chunks = iter(result)
            return self._pump()
        # A regular file: os.sendfile, parked (without this worker) while the socket is full.
        self.chunks = None
        try:
            self.file = self._file_head(*source)
        except BaseException:
            self._close_result()
            raise
        return self._pump_file()

    def _pump(self) -> bool:
        """Send the streamed response's pieces until it ends (True) or the client's unread
        output passes OUT_HIGH: then park it (False) and free this worker; the loop resumes it
        on a worker once the client has read enough, or the connection closed."""
        chunks = self.chunks
        assert chunks is not None
        conn = self.conn
        try:
            for chunk in chunks:
                if not chunk:
                    continue
                self.write(chunk, wait=False)
                if len(conn.outbuf) > OUT_HIGH:
                    with conn.lock:
                        if len(conn.outbuf) > OUT_HIGH and not conn.closing:
                            conn.parked = partial(self.run, True)
                            return False
        except BaseException:
            self._close_result()
            raise
        self._close_after_body()
        self._end()
        return True

    def _close_after_body(self) -> None:
        """Close the result of a body produced whole: a failing ``close()`` is the application's
        error, but once bytes went out the response is still ended (its last chunk sent, the
        connection kept for a request pipelined behind it), as gunicorn ends it."""
        try:
            self._close_result()
        except Exception as exc:
            if not self.cycle.committed:
                raise  # nothing went out: a clean 500
            suffix, extra = tagged(self.cycle)
            _log.error(
                "Exception in the WSGI application's close()%s", suffix, exc_info=exc, extra=extra
            )

    def _close_result(self) -> None:
        result, self.result, self.chunks = self.result, None, None
        close_result(result)

    def _end(self) -> None:
        if self.upgrade is not None and self.upgrade.accepted:
            self.upgrade.finish()
        elif not self.cycle.complete:
            self._send_all(())

    def _send_all(self, pieces: Sequence[bytes]) -> None:
        """The whole (rest of the) body: one write, with its length when none was declared."""
        cycle = self.cycle
        if cycle.phase is CyclePhase.WAITING:
            raise RuntimeError("the application returned without calling start_response()")
        data = b"".join(pieces)  # a lone bytes piece is returned as it is, not copied
        conn = self.conn
        with conn.lock:
            if conn.closing:
                raise ClientDisconnected("the connection is closing")
            out = cycle.body(data, whole=True)
            # The whole response is in memory: waiting for a slow reader would only hold this
            # worker (the write timeout closes a client that never reads).
            conn.write(out, wait=False)
            conn.response_done(time.monotonic())

    def _file_head(self, fileno: int, offset: int, available: int) -> _FileSend | None:
        """``wsgi.file_wrapper`` (PEP 3333 "Optional Platform-Specific File Handling") of a
        regular file on a plain socket: write the head (and the framing before the body); where
        the body stands, or None when no body goes (HEAD, 204, 304, a declared length of 0)."""
        conn, cycle = self.conn, self.cycle
        with conn.lock:
            if conn.closing:
                raise ClientDisconnected("the connection is closing")
            conn.write(cycle.file_head(available), wait=False)
        room = cycle.file_room
        count = available if room is None else min(available, room)
        if cycle.head or cycle.status < 200 or cycle.status in (204, 304):
            return None
        framing = conn.core.frame_body(count)
        if framing is None:
            return None
        before, after = framing
        if before:
            with conn.lock:
                conn.write(before, wait=False)
        return _FileSend(fileno, offset, count, after)

    def _pump_file(self) -> bool:
        """Send the file's body straight from the page cache until it ends (True) or the socket
        is full: then park (False) and free this worker; the loop resumes it on a worker once
        the socket is writable, or the connection closed."""
        file = self.file
        try:
            if file is not None and not self._sendfile(file):
                return False
        except BaseException:
            self.file = None
            self._close_result()
            raise
        self.file = None
        self._close_after_body()
        self._end()
        return True

    def _sendfile(self, file: _FileSend) -> bool:
        """Move the file's bytes with ``os.sendfile``; False once parked on a full socket."""
        conn, cycle = self.conn, self.cycle
        fd = conn.sock.fileno()
        while file.done < file.count:
            with conn.lock:
                if conn.closing:
                    raise ClientDisconnected("the connection is closing")
                if conn.outbuf:  # the file's bytes go after what is queued
                    conn.park_writable(partial(self.run, True))
                    return False
                conn.sending = True
            # Without the lock: the call may wait on the disk, and the loop thread takes this
            # lock for every event of the connection. ``sending`` keeps the descriptor open.
            failure: OSError | None = None
            try:
                moved = os.sendfile(
                    fd, file.fileno, file.offset + file.done, min(file.count - file.done, _BLOCK)
                )
            except (BlockingIOError, InterruptedError):
                moved = -1
            except OSError as exc:
                failure = exc
            with conn.lock:
                conn.release_socket()
                if conn.closed:
                    raise ClientDisconnected("the connection closed while sending")
                if failure is not None:
                    conn.break_()
                    raise ClientDisconnected(f"sendfile failed: {failure}") from failure
                if moved < 0:
                    conn.park_writable(partial(self.run, True))
                    return False
            if moved == 0:
                raise ShortBody("the file ended before its announced length")
            file.done += moved
            cycle.file_sent(moved)
            if self.loop.metrics is not None:
                self.loop.metrics.sent(moved)
        if file.after:
            with conn.lock:
                conn.write(file.after, wait=False)
        return True

    def _fail(self, exc: BaseException) -> None:
        """The application (or its response) failed: answer 500 if still possible, else cut."""
        conn = self.conn
        request = self.request
        suffix, extra = tagged(self.cycle)
        short = cut_short(exc)
        if short is not None:
            # A file that shrank under a download: the response is cut (the connection closes),
            # an operational event that a traceback would only bury.
            _log.warning(
                "Response cut short (%s %s): %s; closing%s",
                request.method.decode("latin-1"),
                request.target.decode("latin-1", "replace"),
                short,
                suffix,
                extra=extra,
            )
        else:
            _log.error(
                "Exception in the WSGI application (%s %s)%s",
                request.method.decode("latin-1"),
                request.target.decode("latin-1", "replace"),
                suffix,
                exc_info=exc,
                extra=extra,
            )
        with conn.lock:
            if conn.closing:
                return
            now = time.monotonic()
            cycle = self.cycle
            out = None
            if self.loop.config.expose_tracebacks and cycle.phase is not CyclePhase.COMPLETE:
                out = cycle.canned(*traceback_response(exc))
            if out is None:
                out = cycle.fail()
            if not out:
                # Committed (or already complete): the connection cannot carry another response.
                conn.core.send_failed()
                conn.close_soon()
                return
            try:
                conn.write(out)
            except ClientDisconnected:
                return
            conn.response_done(now)


__all__ = ["Exchange"]
