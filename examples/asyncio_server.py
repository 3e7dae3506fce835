"""An HTTP/1.1 and WebSocket server on ``asyncio.Protocol``, built only on the Tether core.

The push-style twin of ``examples/blocking_server.py``: asyncio calls
``data_received`` whenever bytes arrive, so this server feeds them to the core
and pauses reading while the core says it wants no more (``wants_data``) or
while the transport's write buffer is full (``pause_writing``). Keep-alive,
pipelining, 100-continue, deadlines (one ``loop.call_at`` timer per
connection), error responses and the WebSocket upgrade all come from the
core; this file only moves bytes and time. It is the server of the tutorial
(``docs/tutorial/asyncio.md``); the ``# --8<--`` comments mark the excerpts it shows.

Run: ``python examples/asyncio_server.py [port]``, then ``curl -d hi localhost:8000``
or connect a WebSocket client to ``ws://localhost:8000/ws`` (it echoes).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import cast

from tether import websocket as ws
from tether.errors import ProtocolError
from tether.http1 import (
    NEED_DATA,
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
    ServerConnection,
    date_header,
)
from tether.limits import Limits

#: The limits every connection enforces (the tests shorten the timeouts).
LIMITS = Limits(max_body_size=1 << 20)


# --8<-- [start:app]
def respond(request: Request, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The application: ``Hello, world!`` for a GET, the body's size for anything else; 501
    for CONNECT (a 2xx would open a tunnel, which this server does not offer)."""
    if request.method == b"CONNECT":
        text = b"no tunnels here\n"
        return 501, [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(text))], text
    if request.method in (b"GET", b"HEAD"):
        text = b"Hello, world!"
    else:
        text = b"you sent %d bytes\n" % len(body)
    return 200, [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(text))], text


# --8<-- [end:app]


class HttpProtocol(asyncio.Protocol):
    """One connection: HTTP/1.1 until a WebSocket upgrade, then WebSocket."""

    def __init__(self, limits: Limits = LIMITS) -> None:
        self.limits = limits
        self.loop = asyncio.get_running_loop()
        self.conn = ServerConnection(limits, now=self.loop.time())
        self.websocket: ws.Connection | None = None
        self.transport: asyncio.Transport | None = None
        self.request: Request | None = None
        self.body: list[bytes] = []
        self.reading = True  # whether the transport is reading
        self.writable = True  # false between pause_writing() and resume_writing()
        self.timer: asyncio.TimerHandle | None = None
        self.timer_when = 0.0

    # --8<-- [start:callbacks]
    # ---- asyncio's callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have asyncio.Transport's methods without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.arm_timer()

    def data_received(self, data: bytes) -> None:
        if self.websocket is not None:
            self.websocket.receive_data(data, self.loop.time())
            self.run_websocket()
            return
        now = self.loop.time()  # one reading per callback: everything in it happens "now"
        try:
            self.conn.receive_data(data, now)
        except ProtocolError:  # bytes past max_buffered_bytes: we paused too late; give up
            self.close()
            return
        self.run_http(now)

    def eof_received(self) -> bool:
        # b"" tells the core the peer closed its side; the core decides what that means.
        self.data_received(b"")
        return True  # we close the transport ourselves, after any last response

    def pause_writing(self) -> None:
        # Push-style flow control: while the peer does not read our output, stop reading its
        # input, so a client that pipelines without reading cannot grow our buffers.
        self.writable = False
        self.update_reading()

    def resume_writing(self) -> None:
        self.writable = True
        self.update_reading()
        if self.websocket is None:
            self.run_http(self.loop.time())  # pipelined requests may be waiting: no new
            # bytes will prompt us

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    # --8<-- [end:callbacks]
    # --8<-- [start:http]
    # ---- HTTP/1.1 --------------------------------------------------------------------------

    def run_http(self, now: float) -> None:
        """Take every event the core has, answer each complete request, in order.

        Responses to pipelined requests are gathered and written together (one system call
        for many), flushed early past 64 KiB so that ``pause_writing`` still comes in time.
        """
        conn = self.conn
        transport = self.transport
        assert transport is not None
        out: list[bytes] = []
        size = 0
        while self.writable and not transport.is_closing():
            try:
                event = conn.next_event(now)
            except ProtocolError as exc:  # the peer's mistake: a 4xx/5xx if still possible
                out.append(conn.error_response(exc, [date_header(time.time())]))
                transport.write(b"".join(out))
                self.close()
                return
            if event is NEED_DATA:
                break
            if isinstance(event, Request):
                self.request = event
                self.body = []
                if conn.expects_continue:  # this application always reads the body
                    out.append(conn.send(InformationalResponse(100)))
            elif isinstance(event, Data):
                self.body.append(event.data)
            elif isinstance(event, EndOfMessage):
                response, more = self.finish_request(now)
                out.append(response)
                size += len(response)
                if not more:
                    transport.write(b"".join(out))
                    if self.websocket is not None:
                        self.start_websocket()
                    else:
                        self.close()
                    return
                if size > 65536:
                    transport.write(b"".join(out))  # may call pause_writing()
                    out.clear()
                    size = 0
            elif isinstance(event, ConnectionClosed):
                self.close()
                return
            else:  # PAUSED: not reached, since every request is answered at its end
                break
        if out:
            transport.write(out[0] if len(out) == 1 else b"".join(out))
        self.update_reading()
        self.arm_timer()

    def finish_request(self, now: float) -> tuple[bytes, bool]:
        """The answer to the request that just ended, and whether HTTP goes on after it.

        False: close after writing it, or (``self.websocket`` set) switch to WebSocket.
        """
        request = self.request
        assert request is not None
        conn = self.conn
        if request.target == b"/ws" and ws.wants_websocket(request.headers):
            result = ws.server_handshake(request)
            if isinstance(result, ws.Accepted):
                self.websocket = ws.Connection(
                    ws.Role.SERVER, deflate=result.deflate, limits=self.limits, now=now
                )
                return conn.send(InformationalResponse(101, result.headers)), False
            out = conn.respond(Response(result.status_code, result.headers), result.body)
        else:
            status, headers, text = respond(request, b"".join(self.body))
            headers.append(date_header(time.time()))
            # The head, the body and the end in one call (for HEAD the core drops the body).
            out = conn.respond(Response(status, headers), text)
        # start_next_cycle says whether HTTP goes on (keep-alive) after this response.
        return out, conn.start_next_cycle(now)

    # --8<-- [end:http]
    # --8<-- [start:websocket]
    # ---- WebSocket ---------------------------------------------------------------------------

    def start_websocket(self) -> None:
        """After the 101: the socket, and the bytes that followed the request, are WebSocket's."""
        assert self.websocket is not None
        self.update_reading()
        rest = self.conn.trailing_data
        if rest:
            self.websocket.receive_data(rest, self.loop.time())
        self.run_websocket()

    def run_websocket(self) -> None:
        """Echo every message; write what the core queued; close TCP when it says so."""
        conn = self.websocket
        assert conn is not None and self.transport is not None
        try:
            for event in conn.events():
                if isinstance(event, (ws.Text, ws.Binary)) and conn.state is ws.State.OPEN:
                    conn.send(event)
        except ws.ProtocolError:
            pass  # the close frame with the error's code is queued; should_close_tcp is set
        out = conn.bytes_to_send()
        if out:
            self.transport.write(out)
        if conn.should_close_tcp:
            self.close()
            return
        self.arm_timer()

    # --8<-- [end:websocket]
    # --8<-- [start:time]
    # ---- time and flow control -------------------------------------------------------------

    def arm_timer(self) -> None:
        """Keep one timer per connection, no later than the core's next deadline.

        A timer that fires early is harmless (``handle_timeout`` returns None and we re-arm),
        so a later deadline leaves the armed timer alone: most requests move no timer.
        """
        core = self.websocket if self.websocket is not None else self.conn
        deadline = core.next_deadline()
        if deadline is None:
            return
        when = deadline[0]
        if self.timer is not None:
            if self.timer_when <= when:
                return
            self.timer.cancel()
        self.timer = self.loop.call_at(when, self.on_timer)
        self.timer_when = when

    def on_timer(self) -> None:
        self.timer = None
        transport = self.transport
        assert transport is not None
        now = self.loop.time()
        if self.websocket is not None:
            if self.websocket.handle_timeout(now) is not None:
                self.run_websocket()  # sends a ping, or the close, and closes if told to
                return
        else:
            out = self.conn.handle_timeout(now, [date_header(time.time())])
            if out is not None:  # expired: a 408 for a slow head or body, else b""; then close
                transport.write(out)
                self.close()
                return
        self.arm_timer()  # a spurious wake-up: the deadline moved later

    def update_reading(self) -> None:
        """Read while the core wants bytes (or a WebSocket is open) and the peer reads ours."""
        wanted = self.writable and (self.websocket is not None or self.conn.wants_data)
        if wanted != self.reading and self.transport is not None:
            self.reading = wanted
            if wanted:
                self.transport.resume_reading()
            else:
                self.transport.pause_reading()

    # --8<-- [end:time]
    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.transport is not None:
            self.transport.close()  # after the buffered bytes are written


async def start(host: str = "127.0.0.1", port: int = 0, limits: Limits = LIMITS) -> asyncio.Server:
    """Listen on ``host:port`` (0: any free port) and serve; returns the listening server."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: HttpProtocol(limits), host, port, backlog=1024)


async def main(port: int) -> None:
    server = await start("127.0.0.1", port)
    print(f"listening on http://127.0.0.1:{port}/", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8000))
