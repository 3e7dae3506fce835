"""Instructions per request of the HTTP/1.1 core, counted by callgrind (deterministic).

Run: ``python bench/http1_instructions.py [--requests N] [--item mix|min] [--mode cycle|parse]``

Wall-clock benchmarks on a shared machine are noisy; instruction counts are not. This runs
``valgrind --tool=callgrind`` twice over a child process: once loading N seeded requests
(``traffic.py``, seed 1, or N minimal GETs) and running them through ``ServerConnection``
as ``http1.py`` does (``cycle``: one connection, a 200 with a small body for each, then
``start_next_cycle``; ``parse``: a fresh connection per request, events up to the end),
once only loading them; the difference over N is the core's cost per request.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

_CHILD = r"""
import sys
sys.path.insert(0, {bench!r})
from traffic import requests
from tether.http1 import Data, EndOfMessage, Response, ServerConnection
mode, item, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
raws = requests(n, seed=1) if item == "mix" else [b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"] * n
response = Response(200, [(b"content-type", b"text/plain"), (b"content-length", b"13")])
body, end = Data(b"Hello, world!"), EndOfMessage()
if mode == "cycle":
    conn = ServerConnection()
    for raw in raws:
        conn.receive_data(raw)
        while type(conn.next_event()) is not EndOfMessage:
            pass
        conn.send(response); conn.send(body); conn.send(end)
        conn.start_next_cycle()
elif mode == "parse":
    for raw in raws:
        conn = ServerConnection()
        conn.receive_data(raw)
        while type(conn.next_event()) is not EndOfMessage:
            pass
"""


def _instructions(mode: str, item: str, n: int) -> int:
    child = _CHILD.format(bench=str(Path(__file__).resolve().parent))
    out = subprocess.run(
        [
            *("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"),
            *(sys.executable, "-c", child, mode, item, str(n)),
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
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--item", choices=("mix", "min"), default="mix")
    parser.add_argument("--mode", choices=("cycle", "parse"), default="cycle")
    args = parser.parse_args(argv)
    n = args.requests
    cost = _instructions(args.mode, args.item, n) - _instructions("load", args.item, n)
    print(f"{args.mode} {args.item}: {cost // n} instructions per request ({n} requests)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
