"""Hypothesis strategies for WebSocket frame streams (RFC 6455), valid and invalid.

Needs ``hypothesis`` (not a dependency of the core). Each strategy draws a
:class:`FrameStream`: the frames as bytes, and what a conforming receiver must make of
them: the events it reports, in order, and for an invalid stream the close code it fails
with and the rule broken.

- :func:`ws_frames`: one valid frame (any opcode, any length encoding);
- :func:`ws_frame_streams`: valid streams: text and binary messages, some fragmented
  (text split anywhere, even inside a UTF-8 sequence), pings and pongs between fragments,
  maybe a closing frame at the end;
- :func:`ws_invalid_frame_streams`: a valid stream followed by one bad frame: unmasked
  from a client (or masked from a server), RSV bits without an extension, a reserved
  opcode, a fragmented or oversized control frame, a length not minimally encoded, a
  continuation out of place, bad UTF-8, a bad close code or payload.

``masked=True`` draws what a client sends (every frame masked with a drawn key), for a
server's receiver; ``masked=False`` what a server sends. Without permessage-deflate::

    from hypothesis import given
    from tether import websocket as ws
    from tether.strategies_ws import ws_frame_streams, ws_invalid_frame_streams

    @given(ws_frame_streams(masked=True))
    def test_valid_streams(stream):
        conn = ws.Connection(ws.Role.SERVER)
        conn.receive_data(stream.to_bytes())
        assert list(conn.events()) == list(stream.events)

    @given(ws_invalid_frame_streams(masked=True))
    def test_invalid_streams(stream):
        conn = ws.Connection(ws.Role.SERVER)
        conn.receive_data(stream.to_bytes())
        seen = []
        try:
            seen.extend(conn.events())
        except ws.ProtocolError as exc:
            assert exc.close_code == stream.close_code, stream.rule
        assert conn.close_code == stream.close_code
        assert seen == list(stream.events)  # what came before the bad frame

    test_valid_streams()
    test_invalid_streams()
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from tether.websocket.events import Binary, Close, Ping, Pong, Text

__all__ = [
    "Frame",
    "FrameStream",
    "ws_frame_streams",
    "ws_frames",
    "ws_invalid_frame_streams",
]

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
#: Close codes a peer may send (RFC 6455 7.4.1, 7.4.2; 1012-1014 from the IANA registry).
_SENDABLE = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]
#: Close codes a peer may not send: under 1000, reserved, local only, unassigned, too high.
_UNSENDABLE = [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535]


@dataclass(frozen=True)
class Frame:
    """One frame as it goes on the wire (RFC 6455 5.2)."""

    opcode: int
    payload: bytes
    fin: bool = True
    #: The masking key (4 bytes), or None for an unmasked frame.
    mask: bytes | None = None
    #: RSV1-3 as the bits 0x40, 0x20, 0x10 of the first byte.
    rsv: int = 0
    #: Force an extended length encoding (2 or 8 bytes) even where a shorter one would do.
    length_bytes: int | None = None

    def to_bytes(self) -> bytes:
        """The frame's bytes: header, masking key, (masked) payload."""
        n = len(self.payload)
        size = self.length_bytes or (0 if n < 126 else 2 if n < 65536 else 8)
        b0 = (0x80 if self.fin else 0) | self.rsv | self.opcode
        mask_bit = 0x80 if self.mask is not None else 0
        if size == 0:
            header = bytes((b0, mask_bit | n))
        else:
            header = bytes((b0, mask_bit | (126 if size == 2 else 127))) + n.to_bytes(size, "big")
        if self.mask is None:
            return header + self.payload
        keys = (self.mask * (n // 4 + 1))[:n]
        return header + self.mask + bytes(a ^ b for a, b in zip(self.payload, keys))


#: What a receiver reports (``tether.websocket`` events, whole messages).
Expected = Text | Binary | Ping | Pong | Close


@dataclass(frozen=True)
class FrameStream:
    """Frames one peer sends, and what the other must report."""

    frames: tuple[Frame, ...]
    #: The events, in order: whole messages, pings, pongs, a close (for an invalid stream:
    #: those before the bad frame).
    events: tuple[Expected, ...]
    #: The close code the receiver must fail with, or None for a valid stream.
    close_code: int | None = None
    #: The rule the bad frame breaks (``"RFC 6455 5.1"``), or ``""``.
    rule: str = ""

    def to_bytes(self) -> bytes:
        """All the frames' bytes, in order."""
        return b"".join(frame.to_bytes() for frame in self.frames)


def _keys(masked: bool) -> st.SearchStrategy[bytes | None]:
    return st.binary(min_size=4, max_size=4) if masked else st.none()


def _payloads(max_size: int) -> st.SearchStrategy[bytes]:
    # Mostly short; some around the 125/126 and 65535/65536 boundaries when allowed.
    edges = [n for n in (125, 126, 127, 65535, 65536) if n <= max_size]
    sizes = st.one_of(st.integers(0, min(max_size, 40)), st.integers(0, max_size))
    if edges:
        sizes = st.one_of(sizes, st.sampled_from(edges))
    return sizes.flatmap(lambda n: st.binary(min_size=n, max_size=n))


def _control(masked: bool) -> st.SearchStrategy[tuple[Frame, Expected]]:
    # A ping or pong with its event (the receiver answers pings itself, and reports them).
    return st.builds(
        lambda ping, payload, key: (
            Frame(PING if ping else PONG, payload, mask=key),
            Ping(payload) if ping else Pong(payload),
        ),
        st.booleans(),
        st.binary(max_size=125),
        _keys(masked),
    )


@st.composite
def _message(draw: st.DrawFn, masked: bool, max_size: int) -> tuple[list[Frame], list[Expected]]:
    # One data message in 1-4 fragments, controls maybe between them; the message event last.
    event: Expected
    if draw(st.booleans()):
        text = draw(st.text(max_size=max_size // 4))
        payload, event, opcode = text.encode(), Text(text), TEXT
    else:
        payload = draw(_payloads(max_size))
        event, opcode = Binary(payload), BINARY
    cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=3)))
    pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)])]
    frames: list[Frame] = []
    events: list[Expected] = []
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        frames.append(Frame(CONTINUATION if i else opcode, piece, last, draw(_keys(masked))))
        if not last:
            for frame, control in draw(st.lists(_control(masked), max_size=2)):
                frames.append(frame)
                events.append(control)
    events.append(event)
    return frames, events


@st.composite
def _stream(
    draw: st.DrawFn, masked: bool, min_messages: int, max_messages: int, max_size: int
) -> tuple[list[Frame], list[Expected]]:
    frames: list[Frame] = []
    events: list[Expected] = []
    for _ in range(draw(st.integers(min_messages, max_messages))):
        if draw(st.integers(0, 4)) == 0:
            frame, control = draw(_control(masked))
            frames.append(frame)
            events.append(control)
        more_frames, more_events = draw(_message(masked, max_size))
        frames += more_frames
        events += more_events
    return frames, events


def ws_frames(masked: bool = True, max_size: int = 300) -> st.SearchStrategy[Frame]:
    """One valid frame: a whole text, binary, ping, pong or close frame."""
    data = st.builds(
        lambda op, payload, key: Frame(op, payload, mask=key),
        st.sampled_from([BINARY]),
        _payloads(max_size),
        _keys(masked),
    )
    text = st.builds(lambda s, key: Frame(TEXT, s.encode(), mask=key), st.text(), _keys(masked))
    close = st.builds(
        lambda code, reason, key: Frame(CLOSE, code.to_bytes(2, "big") + reason, mask=key),
        st.sampled_from(_SENDABLE) | st.integers(3000, 4999),
        st.text(max_size=30).map(str.encode).filter(lambda r: len(r) <= 123),
        _keys(masked),
    )
    return st.one_of(data, text, close, _control(masked).map(lambda pair: pair[0]))


@st.composite
def ws_frame_streams(
    draw: st.DrawFn,
    *,
    masked: bool = True,
    max_messages: int = 4,
    max_size: int = 300,
    close: bool | None = None,
) -> FrameStream:
    """A valid frame stream (1 to ``max_messages`` messages) and the events it makes.

    ``close=None``: maybe a close frame last; ``True``: always; ``False``: never.

    ``max_size`` bounds a message's payload (above 65535, 64-bit lengths are drawn too).
    """
    # At least one message: an empty stream has no bytes, and b"" means EOF to a receiver.
    frames, events = draw(_stream(masked, 1, max(max_messages, 1), max_size))
    if close is None:
        close = draw(st.booleans())
    if close:
        key = draw(_keys(masked))
        if draw(st.integers(0, 3)) == 0:
            frames.append(Frame(CLOSE, b"", mask=key))
            events.append(Close(1005, ""))
        else:
            code = draw(st.sampled_from(_SENDABLE) | st.integers(3000, 4999))
            reason = draw(st.text(max_size=30).filter(lambda r: len(r.encode()) <= 123))
            frames.append(Frame(CLOSE, code.to_bytes(2, "big") + reason.encode(), mask=key))
            events.append(Close(code, reason))
    return FrameStream(tuple(frames), tuple(events))


_BAD_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\x80"]


@st.composite
def _bad_frames(draw: st.DrawFn, masked: bool) -> tuple[list[Frame], int, str]:
    # The bad frame(s) that end an invalid stream: (frames, close code, rule).
    key = draw(_keys(masked))
    payload = draw(st.binary(max_size=20))
    kind = draw(st.sampled_from(range(11)))  # uniform: integers() favours the ends
    if kind == 0:  # the wrong masking for the direction
        wrong = None if masked else draw(_keys(True))
        opcode = draw(st.sampled_from([TEXT, BINARY, PING, CLOSE]))
        body = b"" if opcode in (TEXT, CLOSE) else payload
        return [Frame(opcode, body, mask=wrong)], 1002, "RFC 6455 5.1"
    if kind == 1:  # RSV bits, no extension negotiated
        rsv = draw(st.sampled_from([0x40, 0x20, 0x10, 0x70]))
        opcode = draw(st.sampled_from([BINARY, PING]))
        return [Frame(opcode, payload, mask=key, rsv=rsv)], 1002, "RFC 6455 5.2"
    if kind == 2:  # reserved opcodes
        opcode = draw(st.sampled_from([0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF]))
        return [Frame(opcode, payload, mask=key)], 1002, "RFC 6455 5.2"
    if kind == 3:  # fragmented control frame
        opcode = draw(st.sampled_from([PING, PONG, CLOSE]))
        body = b"" if opcode == CLOSE else payload
        return [Frame(opcode, body, fin=False, mask=key)], 1002, "RFC 6455 5.5"
    if kind == 4:  # control frame payload over 125 bytes
        opcode = draw(st.sampled_from([PING, PONG]))
        big = draw(st.binary(min_size=126, max_size=200))
        return [Frame(opcode, big, mask=key)], 1002, "RFC 6455 5.5"
    if kind == 5:  # length not in its minimal encoding
        size = draw(st.sampled_from([2, 8]))
        short = payload if size == 2 else payload + bytes(100)
        return [Frame(BINARY, short, mask=key, length_bytes=size)], 1002, "RFC 6455 5.2"
    if kind == 6:  # a continuation with nothing to continue
        return [Frame(CONTINUATION, payload, mask=key)], 1002, "RFC 6455 5.4"
    if kind == 7:  # a new data message inside a fragmented one
        first = Frame(BINARY, payload, fin=False, mask=key)
        return [first, Frame(TEXT, b"x", mask=draw(_keys(masked)))], 1002, "RFC 6455 5.4"
    if kind == 8:  # text that is not UTF-8, maybe fragmented (RFC 6455 8.1)
        before = draw(st.text(max_size=10)).encode()
        data = before + draw(st.sampled_from(_BAD_UTF8)) + draw(st.text(max_size=10)).encode()
        if draw(st.booleans()) or len(data) < 2:
            return [Frame(TEXT, data, mask=key)], 1007, "RFC 6455 8.1"
        cut = draw(st.integers(1, len(data) - 1))
        frames = [Frame(TEXT, data[:cut], fin=False, mask=key)]
        frames.append(Frame(CONTINUATION, data[cut:], mask=draw(_keys(masked))))
        return frames, 1007, "RFC 6455 8.1"
    if kind == 9:  # a close code that may not be sent, or a 1-byte close payload
        if draw(st.booleans()):
            return [Frame(CLOSE, b"\x03", mask=key)], 1002, "RFC 6455 5.5.1"
        code = draw(st.sampled_from(_UNSENDABLE) | st.integers(1016, 2999))
        return [Frame(CLOSE, code.to_bytes(2, "big"), mask=key)], 1002, "RFC 6455 7.4"
    reason = b"bye" + draw(st.sampled_from(_BAD_UTF8))  # a close reason that is not UTF-8
    return [Frame(CLOSE, b"\x03\xe8" + reason, mask=key)], 1007, "RFC 6455 5.5.1"


@st.composite
def ws_invalid_frame_streams(
    draw: st.DrawFn, *, masked: bool = True, max_messages: int = 2, max_size: int = 100
) -> FrameStream:
    """A valid stream, then one bad frame: the events before it, the close code, the rule."""
    frames, events = draw(_stream(masked, 0, max_messages, max_size))
    bad, code, rule = draw(_bad_frames(masked))
    return FrameStream(tuple(frames + bad), tuple(events), code, rule)
