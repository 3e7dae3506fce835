"""The server's rules for one WebSocket session, written once for every server (sans I/O).

Around the core's :class:`tether.websocket.Connection` a server keeps a few rules of its own:
received messages wait in a bounded inbox until the application takes them (reading stops
above :data:`~tether.serving_cycle.RULES` ``inbox_high`` bytes, resumes below ``inbox_low``);
reading also stops while output to the peer is backed up (every ping read queues a pong, so a
peer that pings and never reads would grow the output without bound) and resumes below
``write_low``; a protocol error becomes the close the application sees; the first close code of
the closing handshake, ours or the peer's, is remembered for the access log; a server shutting
down closes with 1001. :class:`WebSocketSession` keeps these rules; a server holds one next to
its socket, moves the bytes, wakes the application, and watches the socket as
:meth:`WebSocketSession.should_read` and :meth:`WebSocketSession.resume` say.
"""

from __future__ import annotations

import enum
from collections import deque

from tether.errors import ProtocolError
from tether.serving_cycle import RULES
from tether.websocket import Binary, Close, Connection, ConnectionLost, DeflateOptions, State, Text

__all__ = ["SERVER_DEFLATE", "Hold", "WebSocketSession"]

#: The permessage-deflate both servers offer: a 4 KiB window each way (RFC 7692 7.1.2: the
#: server announces its own and asks the client's when the client offered the parameter) and
#: zlib's ``memLevel`` 5, as websockets serves by default. With zlib's defaults (a 32 KiB
#: window, ``memLevel`` 8) a session that had sent one compressed message held about 127 KiB
#: (a plain one about 27), so a few thousand clients that each send one message cost the
#: server hundreds of MB; now about 65 KiB. Messages compress a little less well.
SERVER_DEFLATE = DeflateOptions(server_max_window_bits=12, client_max_window_bits=12, mem_level=5)

#: What the inbox holds: messages, then at most one ending (which stays at its head).
Received = Text | Binary | Close | ConnectionLost


class Hold(enum.Enum):
    """Why reading is held back, and so what lets it resume."""

    #: The application is behind on its messages: resume once it takes some.
    INBOX = "inbox"
    #: Output to the peer is backed up: resume once the peer reads it.
    OUTPUT = "output"


class WebSocketSession:
    """One WebSocket session's inbox, reading rules and closing handshake."""

    __slots__ = ("_sizes", "app_done", "code", "held", "inbox", "inbox_size", "max_messages", "ws")

    def __init__(self, ws: Connection, max_messages: int | None = None) -> None:
        #: The core's connection.
        self.ws = ws
        #: Messages the inbox may hold before reading stops, besides its byte bound (uvicorn's
        #: ``--ws-max-queue``); reading resumes at a quarter of it. None: the byte bound only.
        self.max_messages = max_messages
        #: Messages received and not yet taken, then the session's ending, if it ended.
        self.inbox: deque[Received] = deque()
        #: Bytes of the messages in the inbox: their payloads as received (a text message's
        #: UTF-8 length, not its characters, which held up to four times the bound in bytes).
        self.inbox_size = 0
        # The size of each message in the inbox, in its order (the core's received_size).
        self._sizes: deque[int] = deque()
        #: Why reading is held back (None: it is not).
        self.held: Hold | None = None
        #: The first close code of the closing handshake, ours or the peer's (the access line).
        self.code: int | None = None
        #: The application has returned: messages are dropped, not kept (:meth:`app_returned`).
        self.app_done = False

    def should_read(self, queued: int) -> bool:
        """Whether to read from the peer now, with ``queued`` bytes of output not yet sent.

        If not, :attr:`held` says why; :meth:`resume` says when to read again.
        """
        if self.inbox_size >= RULES.inbox_high or (
            self.max_messages is not None and len(self.inbox) >= self.max_messages
        ):
            self.held = Hold.INBOX
        elif queued > RULES.write_high or self.ws.write_paused:
            self.held = Hold.OUTPUT
        else:
            return True
        return False

    def resume(self, queued: int) -> bool:
        """Whether reading held back may resume (it then is no longer held): the inbox fell
        below ``inbox_low`` (and its messages to a quarter of :attr:`max_messages`), or the
        ``queued`` output to ``write_low`` or less."""
        held = self.held
        limit = self.max_messages
        if (
            held is Hold.INBOX
            and self.inbox_size < RULES.inbox_low
            and (limit is None or len(self.inbox) <= limit // 4)
        ) or (held is Hold.OUTPUT and queued <= RULES.write_low):
            self.held = None
            return True
        return False

    def take_events(self) -> bool:
        """Move the core's events into the inbox; True if it gained any (wake the application).

        Pings are answered by the core (send :meth:`Connection.bytes_to_send` afterwards);
        pongs need nothing. A protocol error ends the session with its close code. At
        :attr:`max_messages`, or once the inbox holds ``inbox_high`` bytes, it stops: the
        frames after stay unparsed bytes in the core, pings among them too. One read of tiny
        messages would otherwise be thousands of them, and one read of permessage-deflate
        messages (each ~1 KiB inflating to ``ws_max_message_size``) dozens of whole messages:
        64 KiB read became 32 MiB held at ``--ws-max-size 1MiB``.
        """
        inbox = self.inbox
        before = len(inbox)
        limit = self.max_messages
        high = RULES.inbox_high
        keep = not self.app_done
        try:
            for event in self.ws.events():
                if isinstance(event, (Text, Binary)):
                    if not keep:
                        continue  # nobody will take it (app_returned)
                    inbox.append(event)
                    size = self.ws.received_size
                    self._sizes.append(size)
                    self.inbox_size += size
                    if self.inbox_size >= high or (limit is not None and len(inbox) >= limit):
                        break
                elif isinstance(event, (Close, ConnectionLost)):
                    inbox.append(event)
                    self.code = self.code or event.code
        except ProtocolError as exc:
            inbox.append(Close(exc.close_code, exc.message))
            self.code = self.code or exc.close_code
        return len(inbox) > before

    def take(self) -> str | bytes | Close | ConnectionLost | None:
        """The next message's data, or the session's ending (left in place: every later call
        returns it too), or None while the inbox is empty."""
        inbox = self.inbox
        if not inbox:
            return None
        event = inbox[0]
        if isinstance(event, (Close, ConnectionLost)):
            return event
        inbox.popleft()
        self.inbox_size -= self._sizes.popleft()
        return event.data

    def app_returned(self) -> None:
        """The application is done with the session: drop what it will never take, now and as
        it arrives, so a full inbox does not hold reading back (the peer's reply to the closing
        handshake must still be read). Call :meth:`resume` afterwards: reading may go on."""
        self.app_done = True
        self.inbox.clear()
        self._sizes.clear()
        self.inbox_size = 0

    def close(self, code: int, reason: str, now: float) -> bool:
        """Start the closing handshake from our side, unless it has begun (then False).

        Send :meth:`Connection.bytes_to_send` afterwards.
        """
        if self.ws.state is not State.OPEN:
            return False
        self.code = self.code or code
        self.ws.send(Close(code, reason), now)
        return True

    def going_away(self, now: float) -> bool:
        """The server shuts down: close with 1001, as :meth:`close` does."""
        return self.close(RULES.going_away_code, RULES.going_away_reason, now)

    def deadline(self) -> float | None:
        """The core's next deadline (close handshake, ping, pong), or None."""
        deadline = self.ws.next_deadline()
        return None if deadline is None else deadline[0]

    @property
    def ending_code(self) -> int:
        """The close code for the access log: the handshake's first, else 1006 (lost)."""
        return self.code or self.ws.close_code or 1006
