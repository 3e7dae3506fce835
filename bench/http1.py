"""HTTP/1.1 core benchmark: tether vs h11 (full keep-alive cycle) and vs httptools (parse only).

Run: ``python bench/http1.py [--rounds N] [--seconds S]``

Every item runs the same request bytes through each implementation, in
interleaved rounds in one process; the time per request is the minimum over
rounds (the least disturbed by other load on the machine). Each line ends in
``ratio=<number>``: how many times faster tether is than the peer.

The full cycle is what a server does per request: feed the bytes, take the
events up to the end of the message, send a 200 response with a small body,
and start the next cycle on the same connection. Parse only is feeding the
bytes and taking the events (a fresh parser each time for both sides, since
httptools has no notion of a response).

The first item, "realistic mix", runs distinct requests from ``traffic.py``
(seeded: 300 sessions with their own cookies and agents, per-request ids,
traceparent and X-Forwarded-For, varied paths, a quarter POST JSON, some
chunked), one after the other on one connection. The other items repeat one
request. tether keeps no state across requests or connections (no table of
lines already read), so repeating a request makes nothing cheaper for it; the
item "browser GET, no line repeated" changes every field value on every
request all the same.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import _core as core  # bench/ is on sys.path: these run as scripts
import h11
import httptools
from traffic import requests

from tether.http1 import EndOfMessage, Response, ServerConnection

MIX = "realistic mix"
_MIX_SEED = 1
_MIX_SIZE = 20_000
_mix: list[bytes] = []

CORPUS: dict[str, bytes] = {
    "minimal GET": b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "browser GET": (
        b"GET /articles/2026/11/index.html?utm_source=feed&page=2 HTTP/1.1\r\n"
        b"Host: www.example.com\r\n"
        b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0\r\n"
        b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
        b"Accept-Language: en-GB,en;q=0.7,de;q=0.3\r\n"
        b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
        b"Referer: https://www.example.com/articles/2026/11/\r\n"
        b"Connection: keep-alive\r\n"
        b"Cookie: session=6f1c2d9e8b7a4c3f9e0d1b2a3c4d5e6f; theme=dark; consent=necessary%2Canalytics;"
        b" _ga=GA1.2.1234567890.1700000000; _gid=GA1.2.987654321.1700000000;"
        b" cart=eyJpdGVtcyI6W3siaWQiOjEyMywicXR5IjoyfSx7ImlkIjo0NTYsInF0eSI6MX1dfQ%3D%3D\r\n"
        b"Upgrade-Insecure-Requests: 1\r\n"
        b"Sec-Fetch-Dest: document\r\n"
        b"Sec-Fetch-Mode: navigate\r\n"
        b"\r\n"
    ),
    "POST 1 KiB": (
        b"POST /api/items HTTP/1.1\r\nHost: api.example.com\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1024\r\n\r\n" + b"x" * 1024
    ),
    "POST chunked 4x256": (
        b"POST /upload HTTP/1.1\r\nHost: api.example.com\r\n"
        b"Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        + (b"100\r\n" + b"y" * 256 + b"\r\n") * 4
        + b"0\r\n\r\n"
    ),
}

# Items with no bar, for what the corpus does not show: chunks of a size that is not a power of
# two (tether reads runs of power-of-two chunks with one regex match).
EXTRA: dict[str, bytes] = {
    "POST chunked 4x300": (
        b"POST /upload HTTP/1.1\r\nHost: api.example.com\r\n"
        b"Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        + (b"12c\r\n" + b"y" * 300 + b"\r\n") * 4
        + b"0\r\n\r\n"
    ),
}

# CPU time of this thread: unlike wall time it does not count the time the thread waits for a
# core while other processes run, which on a shared 2-core machine is most of the noise.
_clock = time.thread_time

RESPONSE_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"13")]
RESPONSE_BODY = b"Hello, world!"


def _unique_browser_gets(n: int) -> list[bytes]:
    """Browser GETs in which every field line differs from request to request.

    Kept from when tether remembered field lines across requests: the cost when
    none of them repeats (now the same as when they do).
    """
    base = CORPUS["browser GET"]
    head, _, _ = base.partition(b"\r\n\r\n")
    request_line, *lines = head.split(b"\r\n")
    out = []
    for i in range(n):
        varied = [
            b"%s; v%d" % (line, i) if not line.startswith(b"Host") else line for line in lines
        ]
        out.append(b"\r\n".join([request_line, *varied]) + b"\r\n\r\n")
    return out


UNIQUE = "browser GET, no line repeated"


def _mix_of(n: int) -> list[bytes]:
    """``n`` requests of the realistic mix (the seeded corpus, cycled)."""
    if not _mix:
        _mix.extend(requests(_MIX_SIZE, seed=_MIX_SEED))
    return (_mix * (n // len(_mix) + 1))[:n]


def _inputs(raw: bytes | str, n: int) -> list[bytes]:
    if raw == MIX:
        return _mix_of(n)
    if raw == UNIQUE:
        return _unique_browser_gets(n)
    assert isinstance(raw, bytes)
    return [raw] * n


def tether_cycle(raw: bytes | str, n: int) -> float:
    raws = _inputs(raw, n)
    conn = ServerConnection()
    response = Response(200, RESPONSE_HEADERS)
    start = _clock()
    for raw in raws:
        conn.receive_data(raw)
        while type(conn.next_event()) is not EndOfMessage:
            pass
        # The whole response in one call, as a server with its body in hand sends it.
        conn.respond(response, RESPONSE_BODY)
        conn.start_next_cycle()
    return _clock() - start


def h11_cycle(raw: bytes | str, n: int) -> float:
    raws = _inputs(raw, n)
    conn = h11.Connection(h11.SERVER)
    start = _clock()
    for raw in raws:
        conn.receive_data(raw)
        while type(conn.next_event()) is not h11.EndOfMessage:
            pass
        conn.send(h11.Response(status_code=200, headers=RESPONSE_HEADERS))
        conn.send(h11.Data(data=RESPONSE_BODY))
        conn.send(h11.EndOfMessage())
        conn.start_next_cycle()
    return _clock() - start


def tether_parse(raw: bytes | str, n: int) -> float:
    raws = _inputs(raw, n)
    start = _clock()
    for raw in raws:
        conn = ServerConnection()
        conn.receive_data(raw)
        while type(conn.next_event()) is not EndOfMessage:
            pass
    return _clock() - start


class _Collect:
    """httptools callbacks that keep what a server needs: URL, headers, body."""

    __slots__ = ("body", "done", "headers", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.done = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True


def httptools_parse(raw: bytes | str, n: int) -> float:
    raws = _inputs(raw, n)
    start = _clock()
    for raw in raws:
        collect = _Collect()
        parser = httptools.HttpRequestParser(collect)
        parser.feed_data(raw)
        parser.get_method()
    return _clock() - start


def _best(fn: Callable[[bytes | str, int], float], raw: bytes | str, n: int) -> float:
    return fn(raw, n) / n


def run(rounds: int, seconds: float) -> list[str]:
    lines = []
    items: list[tuple[str, bytes | str]] = [
        (MIX, MIX),
        *CORPUS.items(),
        *EXTRA.items(),
        (UNIQUE, UNIQUE),
    ]
    for name, raw in items:
        for measure, ours, peer, peer_name in (
            ("full cycle", tether_cycle, h11_cycle, "h11"),
            ("parse only", tether_parse, httptools_parse, "httptools"),
        ):
            # Size n so that one round of ours takes about seconds / rounds / 2.
            probe = _best(ours, raw, 200)
            n = max(200, int(seconds / rounds / 2 / probe))
            best_ours = best_peer = float("inf")
            for _ in range(rounds):
                best_ours = min(best_ours, _best(ours, raw, n))
                best_peer = min(best_peer, _best(peer, raw, max(50, n // 4)))
            lines.append(
                f"{name:<29} {measure:<11} tether={best_ours * 1e6:7.2f}us "
                f"{peer_name}={best_peer * 1e6:7.2f}us ratio={best_peer / best_ours:.2f}"
            )
            print(lines[-1], flush=True)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--core", choices=core.CHOICES, default="pure", help=core.HELP)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=2.0, help="time budget per line")
    args = parser.parse_args(argv)
    print(core.use(args.core), flush=True)
    print(
        f"python {sys.version.split()[0]}, h11 {h11.__version__}, httptools {httptools.__version__}"
    )
    run(args.rounds, args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
