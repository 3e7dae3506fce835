"""WebSocket server-side receive-and-echo benchmark: Tether against wsproto and websockets.

Each peer plays the server of an open connection (no handshake): it is fed the
same pre-built masked client frames in 64 KiB reads, parses them into
messages, answers each with the same message and produces the bytes to write.
The peers are wsproto's ``Connection`` and websockets' sans-I/O ``Protocol``,
each used the way its documentation shows.

Items (one line each, ending in ``ratio=<tether speed / peer speed>``, the median over
rounds of the ratio within each round; rates are medians too):

- 16-byte text messages, messages per second, against wsproto and websockets;
- 1 MiB masked binary messages, MB/s, against wsproto (and websockets, for information).

Run: ``python bench/websocket.py [--rounds 5] [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import _core as core  # bench/ is on sys.path: these run as scripts
from websockets.frames import Opcode
from websockets.protocol import Protocol
from websockets.protocol import Side as WsSide
from wsproto.connection import Connection as WsprotoConnection
from wsproto.connection import ConnectionType
from wsproto.events import BytesMessage, Message, TextMessage

from tether import websocket as ws
from tether.limits import Limits

READ = 64 * 1024


def client_frames(messages: list[bytes | str]) -> bytes:
    """Masked client frames for ``messages``, built by Tether's client role."""
    client = ws.Connection(ws.Role.CLIENT, mask_source=os.urandom, limits=_LIMITS)
    out = bytearray()
    for message in messages:
        client.send(ws.Text(message) if isinstance(message, str) else ws.Binary(message))
        out += client.bytes_to_send()
    return bytes(out)


_LIMITS = Limits(
    ws_max_frame_size=64 * 1024 * 1024,
    ws_max_message_size=64 * 1024 * 1024,
    ws_write_high_water=1 << 40,
    ws_write_low_water=0,
)


def chunks(data: bytes) -> list[bytes]:
    """The reads a server would make of ``data``."""
    return [data[i : i + READ] for i in range(0, len(data), READ)]


def run_tether(reads: list[bytes]) -> int:
    """Echo everything; returns the number of bytes produced."""
    conn = ws.Connection(ws.Role.SERVER, limits=_LIMITS)
    sent = 0
    Text, Binary = ws.Text, ws.Binary
    for data in reads:
        conn.receive_data(data)
        for event in conn.events():
            if type(event) is Text or type(event) is Binary:
                conn.send(event)
        sent += len(conn.bytes_to_send())
    return sent


def run_wsproto(reads: list[bytes]) -> int:
    """wsproto delivers message pieces as they arrive; the echo waits for the whole message."""
    conn = WsprotoConnection(ConnectionType.SERVER)
    sent = 0
    text_parts: list[str] = []
    byte_parts: list[bytes] = []
    for data in reads:
        conn.receive_data(data)
        for event in conn.events():
            if isinstance(event, TextMessage):
                text_parts.append(event.data)
                if event.message_finished:
                    sent += len(conn.send(Message(data="".join(text_parts))))
                    text_parts = []
            elif isinstance(event, BytesMessage):
                byte_parts.append(bytes(event.data))
                if event.message_finished:
                    sent += len(conn.send(Message(data=b"".join(byte_parts))))
                    byte_parts = []
    return sent


def run_websockets(reads: list[bytes]) -> int:
    """websockets' sans-I/O protocol: frames out of ``events_received``, echo with send_*."""
    conn = Protocol(WsSide.SERVER, max_size=None)
    sent = 0
    for data in reads:
        conn.receive_data(data)
        for frame in conn.events_received():
            if frame.opcode is Opcode.TEXT:
                conn.send_text(frame.data)
            elif frame.opcode is Opcode.BINARY:
                conn.send_binary(frame.data)
        for out in conn.data_to_send():
            sent += len(out)
    return sent


PEERS: dict[str, Callable[[list[bytes]], int]] = {
    "tether": run_tether,
    "wsproto": run_wsproto,
    "websockets": run_websockets,
}


def measure(reads: list[bytes], peers: list[str], rounds: int) -> dict[str, list[float]]:
    """Seconds per run for each peer, interleaved round by round to share the noise."""
    times: dict[str, list[float]] = {p: [] for p in peers}
    expected = None
    for _ in range(rounds):
        for peer in peers:
            start = time.perf_counter()
            produced = PEERS[peer](reads)
            times[peer].append(time.perf_counter() - start)
            if expected is None:
                expected = produced
            # Server frames are unmasked with minimal headers: every peer writes the same bytes.
            assert produced == expected, (peer, produced, expected)
    return times


def paired_ratio(times: dict[str, list[float]], peer: str) -> float:
    """Median over rounds of peer time / tether time: each round's pair shares its noise."""
    return statistics.median(p / t for p, t in zip(times[peer], times["tether"], strict=True))


def main() -> None:
    """Run the items and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--core", choices=core.CHOICES, default="pure", help=core.HELP)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = parser.parse_args()
    print(core.use(args.core), flush=True)

    count = 2_000 if args.quick else 20_000
    small = client_frames(["abcdefghijklmnop"] * count)
    small_reads = chunks(small)
    times = measure(small_reads, ["tether", "wsproto", "websockets"], args.rounds)
    rate = {p: count / statistics.median(t) for p, t in times.items()}
    for peer in ("wsproto", "websockets"):
        print(
            f"16-byte text echo vs {peer}: tether={rate['tether']:,.0f} msg/s "
            f"{peer}={rate[peer]:,.0f} msg/s ratio={paired_ratio(times, peer):.2f}"
        )

    big_count = 4 if args.quick else 16
    big = client_frames([os.urandom(1 << 20) for _ in range(big_count)])
    big_reads = chunks(big)
    times = measure(big_reads, ["tether", "wsproto", "websockets"], args.rounds)
    mbps = {p: big_count * (1 << 20) / 1e6 / statistics.median(t) for p, t in times.items()}
    for peer in ("wsproto", "websockets"):
        print(
            f"1 MiB masked binary echo vs {peer}: tether={mbps['tether']:,.0f} MB/s "
            f"{peer}={mbps[peer]:,.0f} MB/s ratio={paired_ratio(times, peer):.2f}"
        )


if __name__ == "__main__":
    main()
