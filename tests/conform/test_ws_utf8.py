"""The WebSocket probes of UTF-8 split across fragments (RFC 6455 5.6, 8.1; Autobahn section 6)
against servers that check it wrongly or late, and the RFC 6455 sentence each probe quotes.

Both Tether servers pass them (``test_groups.test_tether_servers_pass_every_new_probe``), and
the lax server, which checks no UTF-8, fails the invalid two (``test_groups``, the lax server).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from tests.conform.broken_peers import LaxWebSocketServer, _server_frame
from tether_server.conform import Result, Verdict, run, target_from_url

PROBES = ("ws-echo-utf8-split", "ws-utf8-split", "ws-utf8-fragment")


class Utf8CheckingServer(LaxWebSocketServer):
    """Lax, but checks the UTF-8 of text messages and fails one that is not with 1007.

    ``per_fragment`` checks each fragment on its own (the mistake: a character may be split
    between fragments); otherwise the whole message is checked once it has ended (right,
    but not failing fast). Messages are echoed whole.
    """

    def __init__(self, *, per_fragment: bool) -> None:
        self.per_fragment = per_fragment
        super().__init__()

    def on_data(self) -> Callable[[socket.socket, int, bytes], bool]:
        parts: list[bytes] = []
        opcode = 0

        def check(sock: socket.socket, b0: int, payload: bytes) -> bool:
            nonlocal opcode
            if b0 & 0x0F:
                opcode, parts[:] = b0 & 0x0F, []
            parts.append(payload)
            fin = bool(b0 & 0x80)
            if opcode == 1 and (self.per_fragment or fin):
                try:
                    (payload if self.per_fragment else b"".join(parts)).decode("utf-8")
                except UnicodeDecodeError:
                    sock.sendall(_server_frame(0x88, (1007).to_bytes(2, "big")))
                    return False
            if fin:
                sock.sendall(_server_frame(0x80 | opcode, b"".join(parts)))
            return True

        return check


def _results(server: LaxWebSocketServer) -> dict[str, Result]:
    try:
        target = target_from_url(f"ws://127.0.0.1:{server.port}/", 0.5)
        return {r.id: r for r in run(target, ["websocket"])}
    finally:
        server.close()


def test_a_server_checking_each_fragment_alone_fails_a_split_character() -> None:
    results = _results(Utf8CheckingServer(per_fragment=True))
    split = results["ws-echo-utf8-split"]
    assert split.verdict is Verdict.FAIL, split
    assert "close frame 1007" in split.observed
    # The other two it fails, as it should (ws-utf8-split for a reason of its own: the first
    # fragment, cut off mid-character, is invalid alone).
    assert results["ws-utf8-split"].verdict is Verdict.PASS, results["ws-utf8-split"]
    fragment = results["ws-utf8-fragment"]
    assert fragment.verdict is Verdict.PASS, fragment
    assert "it failed on the invalid fragment, before the message ended" in fragment.observed


def test_failing_only_at_the_messages_end_is_allowed() -> None:
    # RFC 6455 8.1 is about the message; Autobahn calls failing on the fragment "strict" and
    # at the end "non-strict", and both pass.
    results = _results(Utf8CheckingServer(per_fragment=False))
    assert {i: results[i].verdict for i in PROBES} == dict.fromkeys(PROBES, Verdict.PASS)
    assert "close frame 1007" in results["ws-utf8-split"].observed
    fragment = results["ws-utf8-fragment"]
    assert "close frame 1007" in fragment.observed
    assert "it failed only at the message's end" in fragment.observed
    assert "café 𝄞" in results["ws-echo-utf8-split"].observed
    # RFC 6455 5.6 on the split character, 8.1 on the invalid ones.
    assert "a particular text frame might include a partial UTF-8 sequence" in (
        results["ws-echo-utf8-split"].sentence
    )
    assert results["ws-utf8-fragment"].sentence.startswith(
        "When an endpoint is to interpret a byte stream as UTF-8 but finds that the byte stream "
        "is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket Connection_."
    )
