"""Moving a probe's bytes to a server and reading its answers with ``ClientConnection``.

One probe, one fresh TCP connection. What comes back is read by the core's
client role, so a response the server frames badly is reported as such rather
than guessed at. Every wait is bounded.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from tether.errors import ProtocolError
from tether.http1 import (
    NEED_DATA,
    PAUSED,
    ClientConnection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
)


@dataclass(frozen=True)
class Target:
    """Where the server under test listens, and what to ask it for."""

    host: str
    port: int
    #: The Host field value to send.
    authority: bytes
    #: An origin-form path the server answers (the URL's path).
    path: bytes
    #: Seconds to wait for an answer before concluding that none is coming.
    timeout: float = 2.0


@dataclass
class Observation:
    """What a server did with one probe's bytes."""

    #: Final response statuses, in order (1xx excluded).
    statuses: list[int] = field(default_factory=list)
    #: Whether each final response said (or implied) that the connection closes.
    closing: list[bool] = field(default_factory=list)
    informational: list[int] = field(default_factory=list)
    #: The server closed the connection (EOF or reset) before ``timeout`` ran out.
    closed: bool = False
    #: Seconds from the last byte sent until the server closed (None: it did not).
    closed_after: float | None = None
    #: The wait ended with the server silent and the connection open.
    timed_out: bool = False
    #: The server's bytes could not be read as HTTP/1.1 responses (ClientConnection's error).
    invalid: str | None = None
    raw: bytes = b""

    def summary(self) -> str:
        """What happened, in a few words."""
        parts = []
        if self.statuses:
            parts.append("answered " + ", ".join(map(str, self.statuses)))
        else:
            parts.append("no response")
        if self.invalid:
            parts.append(f"unreadable response ({self.invalid})")
        if self.closed:
            parts.append("then closed")
        elif self.timed_out:
            parts.append("then kept the connection open, silent")
        return ", ".join(parts)


def _register(conn: ClientConnection, methods: Sequence[bytes], authority: bytes) -> None:
    """Tell the client role which requests the raw bytes carry (for HEAD and CONNECT framing)."""
    for method in methods:
        target = authority if method == b"CONNECT" else b"/"
        if b":" not in target and method == b"CONNECT":
            target += b":80"
        conn.send(Request(method, target, [(b"host", authority)]))
        conn.send(EndOfMessage())


def exchange(
    target: Target,
    pieces: Sequence[bytes],
    *,
    expect: Sequence[bytes] = (b"GET", b"GET"),
    half_close: bool = False,
    wait: float | None = None,
    pause: float = 0.0,
    linger: float = 0.0,
) -> Observation:
    """Send ``pieces`` (``pause`` seconds apart) and read the answers.

    ``expect`` names the methods of the requests the bytes hold, so that the
    client role frames each response right; reading stops once that many final
    responses arrived, the server closed, or ``wait`` (default
    ``target.timeout``) passed without a byte. With ``linger``, once every answer
    arrived on a connection left open, reading goes on for up to that many seconds
    to see whether the server closes it (so whether a close is seen does not hang
    on how the server's bytes were split into reads).
    """
    obs = Observation()
    conn = ClientConnection()
    _register(conn, expect, target.authority)
    wait = target.timeout if wait is None else wait
    try:
        sock = socket.create_connection((target.host, target.port), timeout=wait)
    except OSError as exc:
        obs.invalid = f"cannot connect: {exc}"
        return obs
    with sock:
        sent_at = time.monotonic()
        try:
            for i, piece in enumerate(pieces):
                if i and pause:
                    time.sleep(pause)
                sock.sendall(piece)
            sent_at = time.monotonic()
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may close while we send; what it answered is still read
        _read(sock, conn, obs, wait, sent_at, linger)
    return obs


def _read(  # noqa: PLR0917
    sock: socket.socket,
    conn: ClientConnection,
    obs: Observation,
    wait: float,
    sent_at: float,
    linger: float,
) -> None:
    deadline = sent_at + wait
    readable = True  # False once the server's bytes stopped parsing: then only wait for EOF
    lingering = False
    while True:
        event: object = NEED_DATA
        if readable:
            try:
                event = conn.next_event()
            except ProtocolError as exc:
                obs.invalid = exc.message
                readable = False
        if isinstance(event, Response):
            obs.statuses.append(event.status_code)
            obs.closing.append(not conn.keep_alive)
            continue
        if isinstance(event, InformationalResponse):
            obs.informational.append(event.status_code)
            continue
        if isinstance(event, (Data, EndOfMessage)):
            continue
        if isinstance(event, ConnectionClosed):
            _closed(obs, sent_at)
            return
        if (
            event is PAUSED
            and readable
            and conn.pending_responses == 0
            and conn.keep_alive
            and not lingering
        ):
            if linger <= 0:
                return  # every expected response arrived; the connection stays open
            lingering = True
            deadline = min(deadline, time.monotonic() + linger)
        left = deadline - time.monotonic()
        if left <= 0:
            obs.timed_out = not lingering
            return
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            obs.timed_out = not lingering
            return
        except OSError:
            data = b""  # reset: the server closed
        obs.raw += data
        if not data:
            # Whatever was pending is not coming (a close-delimited body is complete too).
            _closed(obs, sent_at)
            return
        if readable:
            try:
                conn.receive_data(data)
            except ProtocolError as exc:
                obs.invalid = exc.message
                readable = False


def _closed(obs: Observation, sent_at: float) -> None:
    obs.closed = True
    obs.closed_after = time.monotonic() - sent_at
