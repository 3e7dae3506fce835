"""WSGI (PEP 3333): the environ, ``start_response``, ``write()``, and running one request.

The loop builds the environ (it already holds the parsed request) and a worker runs
:meth:`Exchange.run`. Small responses leave in one ``send``: a list or tuple result becomes one
head-plus-body-plus-end write; a streamed one sends its head with the first non-empty piece.
The result's ``close()`` is always called. ``wsgi.file_wrapper`` results go out with
``os.sendfile`` on plain sockets (:mod:`._files`).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from http import HTTPStatus
from typing import IO, Any

from tether.http1 import InformationalResponse, Request, Response
from tether.serving import TrustedProxies, split_target, unquote_path
from tether.serving_cycle import CyclePhase, ResponseCycle
from tether.websocket import HandshakeError
from tether.websocket.handshake import wants_websocket
from tether_server.forwarded import apply_forwarding
from tether_server.server_metrics import ServerMetrics
from tether_server.tagging import log_access, tagged
from tether_threaded._connection import OUT_HIGH, Connection
from tether_threaded._files import FileWrapper, send_file
from tether_threaded._input import ClientDisconnected
from tether_threaded._ports import Host
from tether_threaded._types import Environ, ExcInfo, Write
from tether_threaded._websocket import Upgrade

_log = logging.getLogger("tether.error")
_access = logging.getLogger("tether.access")

#: PEP 3333: "Applications and middleware are forbidden from using HTTP/1.1 hop-by-hop
#: features or headers". ``Connection: close`` is accepted as the one way to ask for a close.
_HOP_BY_HOP = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    )
)

#: Environ keys of common request header names. The table is fixed here, at import, and never
#: filled from requests: it holds no byte any client sent, so no client can learn from it what
#: another sent (a table filled from requests, even bounded, would keep the first values seen).
_KEYS: dict[bytes, str] = {
    b"content-type": "CONTENT_TYPE",
    b"content-length": "CONTENT_LENGTH",
    **{
        name: "HTTP_" + name.decode("ascii").upper().replace("-", "_")
        for name in (
            b"accept accept-encoding accept-language authorization cache-control connection "
            b"cookie dnt forwarded host if-match if-modified-since if-none-match origin pragma "
            b"range referer sec-fetch-dest sec-fetch-mode sec-fetch-site sec-fetch-user "
            b"sec-websocket-extensions sec-websocket-key sec-websocket-protocol "
            b"sec-websocket-version traceparent tracestate transfer-encoding "
            b"upgrade-insecure-requests upgrade user-agent x-forwarded-for x-forwarded-host "
            b"x-forwarded-port x-forwarded-prefix x-forwarded-proto x-real-ip x-request-id"
        ).split()
    },
}
_CONTENT_LENGTH = b"content-length"
#: The standard status lines, split: fixed at import, only looked up (like ``_KEYS``).
_STATUSES: dict[str, tuple[int, bytes]] = {
    f"{status.value} {status.phrase}": (status.value, status.phrase.encode("latin-1"))
    for status in HTTPStatus
}


def _environ_key(name: bytes) -> str | None:
    """The environ key of a header name that is not in :data:`_KEYS` (not remembered)."""
    # A name with "_" would collide with its "-" twin in the environ (CGI maps both to "_");
    # such fields are dropped so a proxy's header cannot be spoofed that way.
    if b"_" in name:
        return None
    return "HTTP_" + name.decode("latin-1").upper().replace("-", "_")


def _parse_status(status: str) -> tuple[int, bytes]:
    """Check a status line like ``"200 OK"`` and split it into code and reason."""
    if type(status) is not str:
        raise TypeError(f"the status must be a str, not {type(status).__name__}")
    if len(status) < 4 or status[3] != " " or not status[:3].isdigit():
        raise ValueError(f"the status must look like '200 OK', got {status!r}")
    return int(status[:3]), status[4:].encode("latin-1")


def _encode_header(item: tuple[str, str]) -> tuple[bytes, bytes]:
    """Check one application header pair and encode it (the core validates the bytes)."""
    name, value = item
    if type(name) is not str or type(value) is not str:
        raise TypeError("header names and values must be str")
    lname = name.lower()
    if lname in _HOP_BY_HOP and (lname != "connection" or value.strip().lower() != "close"):
        raise ValueError(f"hop-by-hop header {name!r} is not allowed from a WSGI application")
    # Content-Length is recognised by identity, so spell its name once.
    raw_name = _CONTENT_LENGTH if lname == "content-length" else name.encode("latin-1")
    return raw_name, value.encode("latin-1")


def build_environ(
    conn: Connection, request: Request, root_path: str, proxies: TrustedProxies | None = None
) -> Environ:
    """The PEP 3333 environ of ``request`` (strings are latin-1 decoded bytes, per the PEP).

    ``SCRIPT_NAME`` is the root path; ``PATH_INFO`` is the percent-decoded path with the root
    path removed when the request carries it. Repeated fields are joined with ", " (``Cookie``
    with "; ", RFC 6265 section 5.4). With ``proxies`` (``--proxy-headers``), forwarding fields
    are applied when the peer is a trusted proxy and removed otherwise
    (:func:`tether_server.forwarded.apply_forwarding`).
    """
    raw_path, query = split_target(request.target)
    path = unquote_path(raw_path).decode("latin-1")
    if root_path and (path == root_path or path.startswith(root_path + "/")):
        path = path[len(root_path) :]
    environ = conn.base_environ.copy()
    environ["REQUEST_METHOD"] = request.method.decode("latin-1")
    environ["PATH_INFO"] = path
    environ["QUERY_STRING"] = query.decode("latin-1")
    environ["REQUEST_URI"] = request.target.decode("latin-1")
    environ["SERVER_PROTOCOL"] = "HTTP/1.1" if request.http_version == b"1.1" else "HTTP/1.0"
    known = _KEYS.get
    for name, value in request.headers:
        key = known(name) or _environ_key(name)
        if key is None:
            continue
        if key in environ:
            old, text = environ[key], value.decode("latin-1")
            environ[key] = f"{old}; {text}" if key == "HTTP_COOKIE" else f"{old}, {text}"
        else:
            environ[key] = value.decode("latin-1")
    if proxies is not None:
        apply_forwarding(environ, proxies)
    if "REMOTE_ADDR" not in environ:
        # A Unix socket peer has no address, but CGI (RFC 3875 4.1.8) says REMOTE_ADDR is
        # always set: "localhost", as waitress's Unix server has it (gunicorn sends "").
        environ["REMOTE_ADDR"] = "localhost"
    return environ


def _traceback_response(exc: BaseException) -> tuple[Response, bytes]:
    """``--expose-tracebacks``: the 500 carries the traceback, as waitress's does."""
    text = "Internal Server Error\n\n" + "".join(traceback.format_exception(exc))
    body = text.encode("utf-8", "replace")
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"connection", b"close"),
    ]
    return Response(500, headers), body


def _close(result: Any) -> None:
    """PEP 3333: the server calls the result's ``close()``, whatever happened."""
    close = getattr(result, "close", None)
    if close is not None:
        close()


class Exchange:
    """One request on its way through the application; the response's rules are the core's
    :class:`tether.serving_cycle.ResponseCycle` (:attr:`cycle`)."""

    __slots__ = (
        "chunks",
        "conn",
        "cycle",
        "environ",
        "input",
        "loop",
        "request",
        "result",
        "reused",
        "started",
        "upgrade",
    )

    def __init__(self, loop: Host, conn: Connection, request: Request, environ: Environ) -> None:
        self.loop = loop
        self.conn = conn
        self.request = request
        self.environ = environ
        loop.config.request_budget.spend()  # --limit-max-requests
        #: --metrics-port: when the head came, and whether the connection served one before.
        self.started = time.monotonic() if loop.metrics is not None else 0.0
        self.reused = conn.core.request_count > 1
        date, server = loop.server_fields()
        client = conn.client
        address = environ["REMOTE_ADDR"]
        port = environ.get("REMOTE_PORT")
        if port is not None and address != conn.base_environ.get("REMOTE_ADDR"):
            # A trusted proxy named the client (build_environ): the access log names it too.
            client = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        tagger = loop.tagger
        if tagger is None:
            self.cycle = ResponseCycle(conn.core, request, client, date=date, server=server)
        else:
            tag = tagger.tag(request.headers)
            self.cycle = ResponseCycle(
                conn.core, request, client, date=date, server=server, extra=tag.headers, tag=tag
            )
            environ.update(tag.app_entries())
        #: The gathered body handed to the application (closed after the response).
        self.input: IO[bytes] | None = None
        self.upgrade: Upgrade | None = None
        #: A streamed (iterable) response: the application's result and the iterator being
        #: sent, kept while the response is parked on a slow reader.
        self.result: Any = None
        self.chunks: Iterator[bytes] | None = None
        environ["tether.early_hints"] = self.early_hints
        if "HTTP_UPGRADE" in environ and wants_websocket(request.headers):
            self.upgrade = Upgrade(conn, request, self.cycle)
            environ["tether.websocket"] = self.upgrade

    @property
    def has_body(self) -> bool:
        """Whether the request has a body (RFC 9112 6.3: Content-Length or Transfer-Encoding)."""
        environ = self.environ
        return "CONTENT_LENGTH" in environ or "HTTP_TRANSFER_ENCODING" in environ

    def close_input(self) -> None:
        """Free the gathered body (its spool file, if any)."""
        stream = self.input
        if stream is not None:
            self.input = None
            stream.close()

    def canned(self, response: Response, body: bytes) -> bytes | None:
        """The bytes of a complete server-made response (a health probe's answer)."""
        return self.cycle.canned(response, body)

    def overloaded(self) -> bytes:
        """The canned 503 with ``Connection: close`` (the server is at its limit)."""
        response, text = self.loop.config.retry_after.response()  # --retry-after-window
        response = Response(response.status_code, [*response.headers, (b"connection", b"close")])
        return self.cycle.canned(response, text) or b""

    # -- the application's callables ------------------------------------------------------------

    def early_hints(self, links: Iterable[str]) -> None:
        """``environ["tether.early_hints"](links)``: a ``103 Early Hints`` (RFC 8297) with one
        ``Link`` field per entry, before ``start_response``; nothing reaches an HTTP/1.0 client
        (RFC 9110 15.2: the core drops it). The fields pass the core's checks (no CR/LF)."""
        if self.cycle.phase is not CyclePhase.WAITING:
            raise AssertionError("early hints go before start_response() (PEP 3333 order)")
        fields = [(b"link", link.encode("latin-1")) for link in links]
        conn = self.conn
        with conn.lock:
            if conn.closing:
                raise ClientDisconnected("the connection is closing")
            out = conn.core.send(InformationalResponse(103, fields))
            if out:
                conn.write(out, wait=True)

    def start_response(
        self,
        status: str,
        headers: Iterable[tuple[str, str]],
        exc_info: ExcInfo | None = None,
    ) -> Write:
        """PEP 3333 ``start_response``."""
        cycle = self.cycle
        if exc_info is not None:
            try:
                if cycle.committed:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif cycle.phase is not CyclePhase.WAITING:
            raise AssertionError("start_response() called again without exc_info (PEP 3333)")
        parsed = _STATUSES.get(status) if type(status) is str else None
        if parsed is None:
            parsed = _parse_status(status)
        encoded = [_encode_header(item) for item in headers]
        # Shutting down: tell the client this connection ends with this response.
        cycle.closing = self.loop.draining
        cycle.start(parsed[0], encoded, parsed[1])
        return self.write

    def write(self, data: bytes) -> None:
        """Send a piece of the body now (the PEP's ``write()`` callable): it waits while the
        client is slow, as the PEP's write must not return before the data is on its way."""
        self._send(data, wait=True)

    def _send(self, data: bytes, wait: bool) -> None:
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

    def run(self) -> None:
        """Run the application and send its response (worker thread)."""
        self._step(self._run)

    def _resume(self) -> None:
        """Go on with a parked streamed response (worker thread)."""
        self._step(self._pump)

    def _step(self, step: Callable[[], bool]) -> None:
        """Run ``step``; unless it parked the response (False), end the exchange."""
        conn = self.conn
        upgrade = self.upgrade
        finished = True
        try:
            finished = step()
        except ClientDisconnected as exc:
            _log.debug("%s: %s", conn.client, exc)
            with conn.lock:
                conn.close_soon(time.monotonic())
        except BaseException as exc:
            # BaseException too: a SystemExit from the app must still end its response (else the
            # connection stays busy and unregistered, a leaked descriptor); the thread lives on.
            if upgrade is not None and upgrade.accepted:
                _log.error("Exception in the WebSocket application", exc_info=exc)
                upgrade.finish(1011)
            elif upgrade is not None and self.cycle.complete and isinstance(exc, HandshakeError):
                _log.debug("%s: WebSocket handshake refused: %s", conn.client, exc)
            else:
                self._fail(exc)
        finally:
            if finished:
                self._wrap_up()

    def record(self, metrics: ServerMetrics) -> None:
        """Count this request, its status and duration (``--metrics-port``)."""
        metrics.request(self.request.method, self.cycle.status, self.started, self.reused)

    def _wrap_up(self) -> None:
        upgrade = self.upgrade
        self.close_input()
        metrics = self.loop.metrics
        if metrics is not None:
            self.record(metrics)
        if upgrade is not None:
            self.loop.release_websocket()
        else:
            self.loop.release()
        if upgrade is not None and upgrade.accepted:
            upgrade.log_access(self.loop.access_log)
        elif self.loop.access_log and _access.isEnabledFor(logging.INFO):
            log_access(_access, self.cycle)

    def _run(self) -> bool:
        result = self.loop.app(self.environ, self.start_response)
        kind = type(result)
        if (kind is list or kind is tuple) and self.upgrade is None:
            # The usual result, the whole body at once (a list or a tuple has no close()).
            self._send_all(result)  # type: ignore[arg-type]
            return True
        accepted = self.upgrade is not None and self.upgrade.accepted
        if (
            not accepted
            and kind is not list
            and kind is not tuple
            and not (kind is FileWrapper and not self.conn.tls and self.cycle.status)
        ):
            # Streamed: sent piece by piece, parked (without this worker) on a slow reader.
            self.result = result
            self.chunks = iter(result)
            return self._pump()
        try:
            if accepted:
                pass  # the result of a WebSocket application is ignored (closed below)
            elif kind is list or kind is tuple:
                self._send_all(result)  # type: ignore[arg-type]
            else:
                send_file(self.conn, self.cycle, result, self.write)  # type: ignore[arg-type]
        finally:
            _close(result)
        self._end()
        return True

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
                self._send(chunk, wait=False)
                if len(conn.outbuf) > OUT_HIGH:
                    with conn.lock:
                        if len(conn.outbuf) > OUT_HIGH and not conn.closing:
                            conn.parked = self._resume
                            return False
        except BaseException:
            self._close_result()
            raise
        self._close_result()
        self._end()
        return True

    def _close_result(self) -> None:
        result, self.result, self.chunks = self.result, None, None
        _close(result)

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
        if not pieces:
            data = b""
        elif len(pieces) == 1 and type(pieces[0]) is bytes:
            data = pieces[0]
        else:
            data = b"".join(pieces)
        conn = self.conn
        with conn.lock:
            if conn.closing:
                raise ClientDisconnected("the connection is closing")
            out = cycle.body(data, whole=True)
            # The whole response is already in memory: waiting for a slow reader to take it
            # would only hold this worker (the loop holds the next request back instead, and
            # the write timeout closes a client that never reads).
            conn.write(out, wait=False)
            conn.response_done(time.monotonic())

    def _fail(self, exc: BaseException) -> None:
        """The application (or its response) failed: answer 500 if still possible, else cut."""
        conn = self.conn
        request = self.request
        suffix, extra = tagged(self.cycle)
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
                out = cycle.canned(*_traceback_response(exc))
            if out is None:
                out = cycle.fail()
            if not out:
                # Committed (or already complete): the connection cannot carry another response.
                conn.core.send_failed()
                conn.close_soon(now)
                return
            try:
                conn.write(out)
            except ClientDisconnected:
                return
            conn.response_done(now)


__all__ = ["Exchange", "build_environ"]
