"""The WebSocket probes of ``tether conform``: the opening handshake and framing (RFC 6455).

Each probe opens a fresh TCP connection. The handshake request is built and
its answer read by the core's HTTP client role (:class:`ClientConnection`);
after a ``101`` the server's frames are read by the core's WebSocket client
(:class:`tether.websocket.Connection`), which checks them as strictly as it
checks a peer's. Well-formed frames are masked with random keys; the broken
ones (unmasked, reserved bits, bad opcodes, oversized control frames) are
built by hand, since the core refuses to send them.

A server that echoes messages gets four more probes (text, binary, a
fragmented message with a ping inside, characters split between fragments);
the first probe finds out whether it echoes, and the echo probes are *skipped*
when it does not.

Each result quotes the sentence of RFC 6455 behind it. Where the frame breaks a
rule that binds its sender (control frames, fragments, close codes), the
sentence is that rule: RFC 6455 says no more of its receiver than that incoming
data MUST be validated (10.7), and failing the connection is what every
implementation (and the Autobahn suite) does.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import os
import socket
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from tether import websocket as ws
from tether.errors import ProtocolError
from tether.http1 import (
    NEED_DATA,
    PAUSED,
    ClientConnection,
    ConnectionClosed,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
)
from tether.websocket.connection import mask
from tether_server.conform._probes import Result, Verdict
from tether_server.conform._wire import Target

GROUP = "websocket"
_VERSION_HEADER = b"sec-websocket-version"


@dataclass
class WsObservation:
    """What a server did on one WebSocket probe connection."""

    #: The handshake's status (None: no response).
    status: int | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    #: Why the handshake answer or a frame could not be read (the core's error), if so.
    invalid: str | None = None
    #: Text, Binary, Ping, Pong and Close events received, in order.
    events: list[ws.Event] = field(default_factory=list)
    #: The server closed TCP before the wait ran out.
    closed: bool = False
    #: The frames held back (``later``) were sent: the server had not failed the connection
    #: on the ones before them.
    sent_later: bool = False

    @property
    def close_code(self) -> int | None:
        """The code of the server's close frame (None: it sent none)."""
        codes = [e.code for e in self.events if isinstance(e, ws.Close)]
        return codes[0] if codes else None

    def messages(self) -> list[str | bytes]:
        """The data messages received."""
        return [e.data for e in self.events if isinstance(e, (ws.Text, ws.Binary))]

    def summary(self) -> str:
        """What happened, in a few words."""
        if self.status != 101:
            what = f"answered {self.status}" if self.status else "no handshake response"
            return what + (f" ({self.invalid})" if self.invalid else "")
        parts = []
        for event in self.events:
            if isinstance(event, ws.Close):
                code = "without a code" if event.code == 1005 else str(event.code)
                parts.append(f"close frame {code}")
            elif isinstance(event, (ws.Text, ws.Binary)):
                parts.append(
                    f"{type(event).__name__.lower()} of {len(event.data)}: {event.data[:24]!r}"
                )
            elif isinstance(event, (ws.Ping, ws.Pong)):
                parts.append(f"{type(event).__name__.lower()} {event.payload[:40]!r}")
        if self.invalid:
            parts.append(f"it sent an invalid frame ({self.invalid})")
        if self.closed and self.close_code is None:
            parts.append("closed TCP without a close frame")
        else:
            parts.append("then closed TCP" if self.closed else "connection left open")
        return ", ".join(parts)


def frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, masked: bool = True
) -> bytes:
    """One client frame as given, valid or not: ``rsv`` is the 3 reserved bits (0-7)."""
    b0 = (0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 0x0F)
    n = len(payload)
    bit = 0x80 if masked else 0
    if n < 126:
        head = struct.pack("!BB", b0, bit | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", b0, bit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, bit | 127, n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + mask(payload, key)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    """A close frame's payload: the code in network order, then the reason."""
    return code.to_bytes(2, "big") + reason


def handshake_headers(target: Target, key: bytes) -> list[tuple[bytes, bytes]]:
    """A valid upgrade request's headers (no extension, no subprotocol offered)."""
    return ws.client_request_headers(target.authority, key)


def _connect(
    target: Target, headers: Sequence[tuple[bytes, bytes]], obs: WsObservation
) -> tuple[socket.socket, bytes] | None:
    """Send the upgrade request; read the answer. The socket and the bytes after a 101."""
    http = ClientConnection()
    wire = http.send(Request(b"GET", target.path, list(headers))) + http.send(EndOfMessage())
    try:
        sock = socket.create_connection((target.host, target.port), timeout=target.timeout)
    except OSError as exc:
        obs.invalid = f"cannot connect: {exc}"
        return None
    deadline = time.monotonic() + target.timeout
    try:
        sock.sendall(wire)
        while True:
            try:
                event = http.next_event()
            except ProtocolError as exc:
                obs.invalid = exc.message
                break
            if isinstance(event, InformationalResponse) and event.status_code == 101:
                obs.status, obs.headers = 101, list(event.headers)
                return sock, http.trailing_data
            if isinstance(event, Response):
                obs.status, obs.headers = event.status_code, list(event.headers)
            if isinstance(event, ConnectionClosed) or (event is PAUSED and obs.status):
                obs.closed = isinstance(event, ConnectionClosed)
                break
            if event is not NEED_DATA and event is not PAUSED:
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            http.receive_data(sock.recv(65536))
    except (OSError, ProtocolError) as exc:
        obs.invalid = obs.invalid or str(exc)
    sock.close()
    return None


def session(
    target: Target,
    frames: Sequence[bytes],
    *,
    until: Callable[[WsObservation], bool] | None = None,
    send_close: bool = False,
    headers: Sequence[tuple[bytes, bytes]] | None = None,
    later: Sequence[bytes] = (),
    pause: float = 1.0,
) -> WsObservation:
    """Open a WebSocket, send ``frames`` in one write, read what comes back.

    Reading stops when ``until(obs)`` holds, the server closes TCP, or
    ``target.timeout`` passes without a byte. A server's close frame is answered
    (the core's client does it) and then its TCP close is awaited. With
    ``send_close`` a Close(1000) goes after the frames, through the core.

    With ``later``, reading after ``frames`` lasts ``pause`` seconds at most; then,
    unless the server has failed the connection (a close frame, a TCP close, an
    invalid frame), ``later`` is sent and read as above.
    """
    obs = WsObservation()
    key = ws.make_key(os.urandom(16))
    connected = _connect(
        target, headers if headers is not None else handshake_headers(target, key), obs
    )
    if connected is None:
        return obs
    sock, rest = connected
    try:
        ws.check_server_response(101, obs.headers, key)
    except ws.HandshakeError as exc:
        if headers is None:
            obs.invalid = f"bad 101: {exc}"
    conn = ws.Connection(ws.Role.CLIENT, mask_source=os.urandom)
    if send_close:
        conn.send(ws.Close(1000, "tether conform"))
    with sock:
        # The server may close while we send: what it answered is still read.
        with contextlib.suppress(OSError):
            sock.sendall(b"".join(frames) + conn.bytes_to_send())
        wait = min(pause, target.timeout) if later else target.timeout
        _read_frames(sock, conn, obs, rest, wait=wait, until=until)
        if later and not (obs.closed or obs.close_code is not None or obs.invalid):
            obs.sent_later = True
            with contextlib.suppress(OSError):
                sock.sendall(b"".join(later))
            _read_frames(sock, conn, obs, b"", wait=target.timeout, until=until)
    return obs


def _read_frames(
    sock: socket.socket,
    conn: ws.Connection,
    obs: WsObservation,
    data: bytes,
    *,
    wait: float,
    until: Callable[[WsObservation], bool] | None,
) -> None:
    deadline = time.monotonic() + wait
    while True:
        if data:
            conn.receive_data(data)
            try:
                for event in conn.events():
                    if not isinstance(event, ws.ConnectionLost):
                        obs.events.append(event)
            except ProtocolError as exc:
                # The server's frames are broken: say so, and keep our close frame to
                # ourselves, so that what the server does next is its own doing.
                obs.invalid = exc.message
                conn.bytes_to_send()
            out = conn.bytes_to_send()  # pongs to the server's pings, the answer to its close
            if out:
                with contextlib.suppress(OSError):
                    sock.sendall(out)
        if until is not None and until(obs):
            return
        left = deadline - time.monotonic()
        if left <= 0:
            return
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return
        except OSError:
            data = b""  # reset: the server closed
        if not data:
            obs.closed = True
            return


# ---- judging ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One WebSocket probe: what it sends, the rule, and how a safe server answers."""

    id: str
    title: str
    rfc: str
    level: str
    safe: str
    #: The RFC's own sentence behind the expectation, quoted exactly; its keyword is ``level``.
    sentence: str = ""


def _result(probe: Probe, verdict: Verdict, observed: str, safe: str | None = None) -> Result:
    return Result(
        probe.id,
        GROUP,
        probe.title,
        probe.rfc,
        probe.level,
        verdict,
        safe or probe.safe,
        observed,
        sentence=probe.sentence,
    )


def _unreachable(probe: Probe, obs: WsObservation) -> Result | None:
    if obs.status == 101:
        return None
    return _result(probe, Verdict.ERROR, f"the upgrade was not accepted: {obs.summary()}")


def judge_failure(
    probe: Probe, obs: WsObservation, code: int, frame_level: str = "SHOULD"
) -> Result:
    """The peer broke a MUST: the server must fail the connection (RFC 6455 7.1.7).

    Closing TCP (or sending a close frame) is what the MUST asks; the close
    frame's code is a SHOULD (a MAY for an unmasked frame, RFC 6455 5.1).
    """
    if (error := _unreachable(probe, obs)) is not None:
        return error
    got = obs.close_code
    if (got is None and not obs.closed) or obs.messages() or obs.invalid:
        return _result(probe, Verdict.FAIL, obs.summary())  # it took the frame, or kept going
    if got == code:
        return _result(probe, Verdict.PASS, obs.summary())
    if got in (None, 1005) and frame_level == "MAY":
        return _result(probe, Verdict.PASS, obs.summary())
    return _result(probe, Verdict.WARN, obs.summary())


def _rejected(probe: Probe, obs: WsObservation, need_version: bool) -> Result:
    if obs.status == 101:
        return _result(probe, Verdict.FAIL, "answered 101: the upgrade went ahead")
    if obs.status is None:
        verdict = Verdict.PASS if obs.closed else Verdict.FAIL
        return _result(probe, verdict, obs.summary())
    if not 400 <= obs.status < 500:
        return _result(probe, Verdict.WARN, obs.summary())
    if need_version:
        versions = [v for n, v in obs.headers if n.lower() == _VERSION_HEADER]
        if not any(b"13" in v for v in versions):
            return _result(
                probe, Verdict.FAIL, f"answered {obs.status} without Sec-WebSocket-Version: 13"
            )
        return _result(
            probe,
            Verdict.PASS,
            f"answered {obs.status} with Sec-WebSocket-Version: {b', '.join(versions).decode('latin-1')}",
        )
    return _result(probe, Verdict.PASS, obs.summary())


# ---- the RFC 6455 sentences, quoted exactly ----------------------------------------------------

#: 4.2.2 (/version/).
VERSION = (
    "If this version does not match a version understood by the server, the server MUST abort "
    "the WebSocket handshake described in this section and instead send an appropriate HTTP "
    "error code (such as 426 Upgrade Required) and a |Sec-WebSocket-Version| header field "
    "indicating the version(s) the server is capable of understanding."
)
#: 4.2.1.
BAD_HANDSHAKE = (
    "If the server, while reading the handshake, finds that the client did not send a handshake "
    "that matches the description below (note that as per [RFC2616], the order of the header "
    "fields is not important), including but not limited to any violations of the ABNF grammar "
    "specified for the components of the handshake, the server MUST stop processing the "
    "client's handshake and return an HTTP response with an appropriate error code (such as "
    "400 Bad Request)."
)
#: 5.1.
UNMASKED = "The server MUST close the connection upon receiving a frame that is not masked."
#: 5.2.
RESERVED_BITS = (
    "If a nonzero value is received and none of the negotiated extensions defines the meaning "
    "of such a nonzero value, the receiving endpoint MUST _Fail the WebSocket Connection_."
)
#: 5.2.
UNKNOWN_OPCODE = (
    "If an unknown opcode is received, the receiving endpoint MUST _Fail the WebSocket Connection_."
)
#: 5.5 (binds the sender).
CONTROL_FRAMES = (
    "All control frames MUST have a payload length of 125 bytes or less and MUST NOT be fragmented."
)
#: 10.7: a continuation frame with no message to continue breaks no sentence of its own.
VALIDATED = "Incoming data MUST always be validated by both clients and servers."
#: 5.4 (binds the sender).
INTERLEAVED = (
    "The fragments of one message MUST NOT be interleaved between the fragments of another "
    "message unless an extension has been negotiated that can interpret the interleaving."
)
#: 8.1.
INVALID_UTF8 = (
    "When an endpoint is to interpret a byte stream as UTF-8 but finds that the byte stream is "
    "not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket Connection_."
)
#: 5.5.1 (binds the sender; 7.4.2: "Status codes in the range 0-999 are not used.").
CLOSE_BODY = (
    "If there is a body, the first two bytes of the body MUST be a 2-byte unsigned integer (in "
    "network byte order) representing a status code with value /code/ defined in Section 7.4."
)
#: 7.4.1 (binds the sender).
RESERVED_1005 = (
    "1005 is a reserved value and MUST NOT be set as a status code in a Close control frame by "
    "an endpoint."
)
#: 5.5.2.
PING = (
    "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in response, unless it "
    "already received a Close frame."
)
#: 5.5.1.
CLOSE_REPLY = (
    "If an endpoint receives a Close frame and did not previously send a Close frame, the "
    "endpoint MUST send a Close frame in response."
)
#: 6.2.
PARSED = "Incoming data MUST be parsed as WebSocket frames as defined in Section 5.2."
#: 5.4.
CONTROL_INSIDE = (
    "An endpoint MUST be capable of handling control frames in the middle of a fragmented message."
)
#: 5.6.
PARTIAL_UTF8 = (
    "Note that a particular text frame might include a partial UTF-8 sequence; however, the "
    "whole message MUST contain valid UTF-8."
)


# ---- the probes ------------------------------------------------------------------------------

_FAIL_SAFE = "fail the connection: a close frame with {code}, then close TCP"


def _handshake_probes(target: Target) -> Iterator[Result]:
    key = ws.make_key(os.urandom(16))
    base = handshake_headers(target, key)

    def with_header(name: bytes, value: bytes | None) -> list[tuple[bytes, bytes]]:
        out = [(n, v) for n, v in base if n != name]
        return out if value is None else [*out, (name, value)]

    probe = Probe(
        "ws-version",
        "Sec-WebSocket-Version: 12",
        "RFC 6455 4.2.2",
        "MUST",
        "refuse the upgrade (426 Upgrade Required) with Sec-WebSocket-Version: 13",
        VERSION,
    )
    obs = session(target, [], headers=with_header(_VERSION_HEADER, b"12"), until=_at_once)
    yield _rejected(probe, obs, True)
    for id, title, value in (
        ("ws-key-missing", "no Sec-WebSocket-Key", None),
        ("ws-key-short", "a Sec-WebSocket-Key of 8 bytes", base64.b64encode(os.urandom(8))),
        (
            "ws-key-not-base64",
            "a Sec-WebSocket-Key that is not base64",
            b"not base64 at all!!!!!==",
        ),
    ):
        probe = Probe(
            id,
            title,
            "RFC 6455 4.2.1",
            "MUST",
            "refuse the upgrade with 400 (the key must decode to 16 bytes)",
            BAD_HANDSHAKE,
        )
        obs = session(target, [], headers=with_header(b"sec-websocket-key", value), until=_at_once)
        yield _rejected(probe, obs, False)


def _at_once(obs: WsObservation) -> bool:
    return True  # a handshake probe that got a 101 has its answer: stop there


def _bad_frames() -> list[tuple[str, str, str, list[bytes], int, str, str]]:
    """(id, title, RFC section, frames, close code expected, strength of that code, sentence)."""
    # fmt: off
    return [
        ("ws-unmasked", "an unmasked client frame", "RFC 6455 5.1", [frame(1, b"unmasked", masked=False)], 1002, "MAY", UNMASKED),
        ("ws-rsv1", "RSV1 set, no extension negotiated", "RFC 6455 5.2", [frame(1, b"rsv1", rsv=4)], 1002, "SHOULD", RESERVED_BITS),
        ("ws-rsv3", "RSV3 set, no extension negotiated", "RFC 6455 5.2", [frame(2, b"rsv3", rsv=1)], 1002, "SHOULD", RESERVED_BITS),
        ("ws-opcode-data", "reserved data opcode 0x3", "RFC 6455 5.2", [frame(3, b"x")], 1002, "SHOULD", UNKNOWN_OPCODE),
        ("ws-opcode-control", "reserved control opcode 0xB", "RFC 6455 5.2", [frame(0xB, b"x")], 1002, "SHOULD", UNKNOWN_OPCODE),
        ("ws-control-fragmented", "a ping with FIN clear (fragmented control frame)", "RFC 6455 5.5", [frame(9, b"frag", fin=False)], 1002, "SHOULD", CONTROL_FRAMES),
        ("ws-control-long", "a 126-byte ping (control frames carry at most 125)", "RFC 6455 5.5", [frame(9, b"p" * 126)], 1002, "SHOULD", CONTROL_FRAMES),
        ("ws-continuation-first", "a continuation frame with no message begun", "RFC 6455 10.7", [frame(0, b"orphan")], 1002, "SHOULD", VALIDATED),
        ("ws-data-in-fragment", "a new text frame inside a fragmented message", "RFC 6455 5.4", [frame(1, b"first", fin=False), frame(1, b"second")], 1002, "SHOULD", INTERLEAVED),
        ("ws-utf8", "invalid UTF-8 in a text message", "RFC 6455 8.1", [frame(1, b"caf\xc3(")], 1007, "SHOULD", INVALID_UTF8),
        # Each fragment decodes alone (the first as a cut-off character): only together are
        # they invalid, so a server must carry a split character over from fragment to fragment.
        ("ws-utf8-split", "invalid UTF-8 across fragments: a character begun in one fragment is not continued in the next", "RFC 6455 8.1", [frame(1, b"caf\xe2\x82", fin=False), frame(0, b"(ok")], 1007, "SHOULD", INVALID_UTF8),
        ("ws-close-code", "a close frame with code 999", "RFC 6455 5.5.1", [frame(8, close_payload(999))], 1002, "SHOULD", CLOSE_BODY),
        ("ws-close-1005", "a close frame with the reserved code 1005", "RFC 6455 7.4.1", [frame(8, close_payload(1005))], 1002, "SHOULD", RESERVED_1005),
        ("ws-close-1-byte", "a close frame with a 1-byte payload", "RFC 6455 5.5.1", [frame(8, b"\x03")], 1002, "SHOULD", CLOSE_BODY),
    ]
    # fmt: on


#: Autobahn 6.4.1's message: valid UTF-8 ("κόσμε"), then U+110000 (beyond Unicode, so invalid)
#: in a fragment of its own, then valid UTF-8 again ("edited").
_VALID_THEN_INVALID = (
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
    b"\xf4\x90\x80\x80",
    b"edited",
)


def _utf8_in_a_later_fragment(target: Target) -> Result:
    """RFC 6455 8.1 asks the message to be failed; failing on the fragment that makes it
    invalid, before the message ends, is what Autobahn (6.4) calls strict, and failing at the
    message's end is allowed too. The probe waits a moment after that fragment to tell which."""
    probe = Probe(
        "ws-utf8-fragment",
        "invalid UTF-8 in a later fragment of a text message whose first fragment is valid",
        "RFC 6455 8.1",
        "MUST",
        _FAIL_SAFE.format(code=1007) + " (on the invalid fragment, or at the message's end)",
        INVALID_UTF8,
    )
    first, bad, last = _VALID_THEN_INVALID
    obs = session(
        target, [frame(1, first, fin=False), frame(0, bad, fin=False)], later=[frame(0, last)]
    )
    result = judge_failure(probe, obs, 1007)
    if result.verdict is Verdict.ERROR or obs.invalid or obs.messages():
        return result
    when = (
        "only at the message's end (allowed: not failing fast)"
        if obs.sent_later
        else "on the invalid fragment, before the message ended"
    )
    return dataclasses.replace(result, observed=f"{result.observed}; it failed {when}")


def _frame_probes(target: Target) -> Iterator[Result]:
    for id, title, rfc, frames, code, frame_level, sentence in _bad_frames():
        probe = Probe(id, title, rfc, "MUST", _FAIL_SAFE.format(code=code), sentence)
        yield judge_failure(probe, session(target, frames), code, frame_level)
    yield _utf8_in_a_later_fragment(target)
    payload = os.urandom(16).hex().encode()
    probe = Probe(
        "ws-ping",
        "a ping",
        "RFC 6455 5.5.2",
        "MUST",
        "answer with a pong carrying the same payload",
        PING,
    )
    obs = session(
        target, [frame(9, payload)], until=lambda o: any(isinstance(e, ws.Pong) for e in o.events)
    )
    if (error := _unreachable(probe, obs)) is not None:
        yield error
    else:
        pongs = [e.payload for e in obs.events if isinstance(e, ws.Pong)]
        verdict = Verdict.PASS if payload in pongs else Verdict.FAIL
        yield _result(probe, verdict, obs.summary())
    probe = Probe(
        "ws-close",
        "the closing handshake",
        "RFC 6455 5.5.1",
        "MUST",
        "answer a close frame with a close frame, then close TCP (RFC 6455 7.1.1: the server first)",
        CLOSE_REPLY,
    )
    obs = session(target, [], send_close=True)
    if (error := _unreachable(probe, obs)) is not None:
        yield error
    elif obs.close_code is None:
        yield _result(probe, Verdict.FAIL, obs.summary())
    else:
        yield _result(probe, Verdict.PASS if obs.closed else Verdict.WARN, obs.summary())


def _echo_probes(target: Target) -> Iterator[Result]:
    text = "tether conform: échos ✓"
    probe = Probe(
        "ws-echo-text",
        "a text message (is it echoed?)",
        "RFC 6455 6.2",
        "",
        "echo servers answer the same text; others need not",
    )
    obs = session(target, [frame(1, text.encode())], until=lambda o: bool(o.messages()))
    if (error := _unreachable(probe, obs)) is not None:
        yield error
        return
    echoes = obs.messages() == [text]
    if not echoes:
        yield _result(probe, Verdict.INFO, f"no echo ({obs.summary()}): echo probes skipped")
        for id, title in (
            ("ws-echo-binary", "a binary message echoed"),
            ("ws-echo-fragmented", "a fragmented message with a ping inside"),
            ("ws-echo-utf8-split", "a text message with characters split between fragments"),
        ):
            yield Result(
                id,
                GROUP,
                title,
                "RFC 6455 5.4",
                "",
                Verdict.SKIP,
                "echo the message whole",
                "skipped: the server does not echo",
            )
        return
    yield _result(probe, Verdict.PASS, obs.summary())
    data = bytes(range(256)) * 300  # 75 KiB: a 64-bit length
    probe = Probe(
        "ws-echo-binary",
        "a 75 KiB binary message echoed",
        "RFC 6455 6.2",
        "MUST",
        "read the 64-bit payload length (RFC 6455 5.2); echo the bytes",
        PARSED,
    )
    obs = session(target, [frame(2, data)], until=lambda o: bool(o.messages()))
    yield _result(probe, Verdict.PASS if obs.messages() == [data] else Verdict.FAIL, obs.summary())
    probe = Probe(
        "ws-echo-fragmented",
        "a text message in three fragments with a ping between them",
        "RFC 6455 5.4",
        "MUST",
        "take the control frame in the middle of the message; echo the whole message",
        CONTROL_INSIDE,
    )
    parts = [
        frame(1, b"frag", fin=False),
        frame(9, b"mid"),
        frame(0, b"men", fin=False),
        frame(0, b"ted"),
    ]
    obs = session(
        target,
        parts,
        until=lambda o: bool(o.messages()) and any(isinstance(e, ws.Pong) for e in o.events),
    )
    good = obs.messages() == ["fragmented"] and any(
        isinstance(e, ws.Pong) and e.payload == b"mid" for e in obs.events
    )
    yield _result(probe, Verdict.PASS if good else Verdict.FAIL, obs.summary())
    probe = Probe(
        "ws-echo-utf8-split",
        "a text message in three fragments, with a 2-byte and a 4-byte character each split "
        "between two of them",
        "RFC 6455 5.6",
        "MUST",
        "join the fragments before decoding: echo the message intact, not fail it",
        PARTIAL_UTF8,
    )
    # "café 𝄞": é (C3 A9) split 1|1, 𝄞 (F0 9D 84 9E) split 2|2.
    parts = [
        frame(1, b"caf\xc3", fin=False),
        frame(0, b"\xa9 \xf0\x9d", fin=False),
        frame(0, b"\x84\x9e"),
    ]
    obs = session(target, parts, until=lambda o: bool(o.messages()))
    good = obs.messages() == ["caf\u00e9 \U0001d11e"]
    yield _result(probe, Verdict.PASS if good else Verdict.FAIL, obs.summary())


def websocket(target: Target) -> Iterator[Result]:
    """Every WebSocket probe against the endpoint at ``target.path``."""
    yield from _handshake_probes(target)
    yield from _echo_probes(target)
    yield from _frame_probes(target)
