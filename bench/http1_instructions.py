"""Instructions per request of the HTTP/1.1 core, counted by callgrind (deterministic).

Run: ``python bench/http1_instructions.py [--requests N] [--item mix|min] [--mode cycle|parse]
[--peers]``

Wall-clock benchmarks on a shared machine are noisy; instruction counts are not. This runs
``valgrind --tool=callgrind`` twice over a child process: once loading N seeded requests
(``traffic.py``, seed 1, or N minimal GETs) and running them through ``ServerConnection``
as ``http1.py`` does (``cycle``: one connection, a 200 with a small body for each, then
``start_next_cycle``; ``parse``: a fresh connection per request, events up to the end),
once only loading them; the difference over N is the core's cost per request. ``--peers``
counts h11 doing the same (and httptools parsing, keeping the URL, fields and body from its
callbacks), so that the ratios of ``bench/http1.py`` have a steady twin. Instructions are not
time: C code (httptools) retires more of them per cycle than the interpreter does, so its
ratio is only a guide; between two pure-Python libraries it is a close one.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import _core as core  # bench/ is on sys.path: these run as scripts

_CHILD = r"""
import sys
sys.path.insert(0, {bench!r})
from traffic import requests
mode, item, n, impl = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
raws = requests(n, seed=1) if item == "mix" else [b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"] * n
if impl == "tether":
    from tether.http1 import EndOfMessage, Response, ServerConnection
    response = Response(200, [(b"content-type", b"text/plain"), (b"content-length", b"13")])
    if mode == "cycle":
        conn = ServerConnection()
        for raw in raws:
            conn.receive_data(raw)
            while type(conn.next_event()) is not EndOfMessage:
                pass
            conn.respond(response, b"Hello, world!")
            conn.start_next_cycle()
    elif mode == "parse":
        for raw in raws:
            conn = ServerConnection()
            conn.receive_data(raw)
            while type(conn.next_event()) is not EndOfMessage:
                pass
elif impl == "h11":
    import h11
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"13")]
    if mode == "cycle":
        conn = h11.Connection(h11.SERVER)
        for raw in raws:
            conn.receive_data(raw)
            while type(conn.next_event()) is not h11.EndOfMessage:
                pass
            conn.send(h11.Response(status_code=200, headers=headers))
            conn.send(h11.Data(data=b"Hello, world!"))
            conn.send(h11.EndOfMessage())
            conn.start_next_cycle()
    elif mode == "parse":
        for raw in raws:
            conn = h11.Connection(h11.SERVER)
            conn.receive_data(raw)
            while type(conn.next_event()) is not h11.EndOfMessage:
                pass
elif impl == "httptools":
    import httptools
    class Sink:
        # What a server keeps from the callbacks: the URL, the fields, the body.
        def __init__(self):
            self.headers = []
            self.body = []
        def on_url(self, url):
            self.url = url
        def on_header(self, name, value):
            self.headers.append((name, value))
        def on_body(self, body):
            self.body.append(body)
    if mode == "parse":
        for raw in raws:
            sink = Sink()
            httptools.HttpRequestParser(sink).feed_data(raw)
"""


def _instructions(mode: str, item: str, n: int, impl: str = "tether") -> int:
    child = _CHILD.format(bench=str(Path(__file__).resolve().parent))
    out = subprocess.run(
        [
            *("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"),
            *(sys.executable, "-c", child, mode, item, str(n), impl),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = re.search(r"Collected : (\d+)", out.stderr)
    assert found is not None, out.stderr
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--core", choices=core.CHOICES, default="pure", help=core.HELP)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--item", choices=("mix", "min"), default="mix")
    parser.add_argument("--mode", choices=("cycle", "parse"), default="cycle")
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also count h11 (cycle and parse) and httptools (parse), and print the ratios",
    )
    args = parser.parse_args(argv)
    print(core.use(args.core), flush=True)
    n = args.requests
    impls = ["tether"]
    if args.peers:
        impls += ["h11", "httptools"] if args.mode == "parse" else ["h11"]
    costs = {}
    for impl in impls:
        # The baseline loads the same requests and imports the same library.
        load = _instructions("load", args.item, n, impl)
        costs[impl] = (_instructions(args.mode, args.item, n, impl) - load) // n
        print(f"{args.mode} {args.item} {impl}: {costs[impl]} instructions per request ({n})")
    for impl in impls[1:]:
        # Fewer instructions is faster: the ratio reads like bench/http1.py's (peer / tether).
        print(
            f"{args.mode} {args.item}: {impl} / tether instructions ratio={costs[impl] / costs['tether']:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
