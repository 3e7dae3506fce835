"""Python bytecodes executed per request by a running server, by function (deterministic).

Run: ``python bench/bytecodes.py [--server asyncio|trio|threaded] [--traffic mix|min]
[--requests N] [--top K] [-- extra server options]``

Where a server's time goes is Python bytecodes, spread thin over many functions; a sampling
profiler on a noisy machine sees that only roughly, and instruction counts (``valgrind``) do not
say which Python function. This runs the server in this process with a trace function that
counts every bytecode (``f_trace_opcodes``) by the function executing it, in every thread,
only while a client sends N keep-alive requests over 8 connections in lockstep (after a
warm-up). It prints the bytecodes per request and the functions that run the most. The count
does not weigh what a bytecode does in C (a ``translate`` over a whole head is one), so it
ranks Python overhead, not time; compare the same traffic before and after a change.

The apps are ``bench/server.py``'s (ASGI, lifespan on) and ``bench/_wsgi_servers.py``'s
(WSGI), served as ``bench/server.py`` and ``bench/_wsgi_servers.py`` run them (access log
off). ``--traffic mix`` cycles through distinct heads from ``bench/traffic.py``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

HERE = Path(__file__).resolve().parent
if TYPE_CHECKING:
    from bench import _harness as harness
    from bench import traffic
else:  # run as a script: bench/ is on sys.path
    import _harness as harness
    import traffic

CONNECTIONS = 8
MINIMAL = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
_counts: collections.Counter[tuple[str, str]] = collections.Counter()
_on = False


def _local(frame: FrameType, event: str, arg: Any) -> Any:
    if event == "opcode" and _on:
        code = frame.f_code
        _counts[(code.co_filename, code.co_name)] += 1
    return _local


def _trace(frame: FrameType, event: str, arg: Any) -> Any:
    frame.f_trace_opcodes = True
    return _local


def _serve(server: str, port: int, extra: list[str]) -> None:
    if server == "threaded":
        from tether_threaded._cli import main

        argv = ["_wsgi_servers:app", "--port", str(port), "--threads", "4", "--no-access-log"]
    else:
        from tether_asyncio._cli import main

        argv = ["serve", "server:app", "--port", str(port), "--app-dir", str(HERE)]
        argv += ["--no-access-log"]
        argv += ["--backend", "trio"] if server == "trio" else ["--loop", "asyncio"]
    sys.argv = ["tether", *argv, "--log-level", "warning", *extra]
    with contextlib.suppress(SystemExit):
        main()


def main() -> int:
    """Command line: print bytecodes per request and the top functions."""
    global _on
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=("asyncio", "trio", "threaded"), default="asyncio")
    parser.add_argument("--traffic", choices=("mix", "min"), default="mix")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("extra", nargs="*", help="more server options (after --)")
    args = parser.parse_args()
    port = harness.free_port()
    os.chdir(HERE)
    threading.settrace(_trace)
    threading.Thread(target=_serve, args=(args.server, port, args.extra), daemon=True).start()
    heads = traffic.get_heads(4000, 1, b"127.0.0.1") if args.traffic == "mix" else [MINIMAL]
    deadline = time.monotonic() + 30
    while True:
        try:
            socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    at = harness.lockstep(socks, heads, 0, 400)  # warm-up: imports, first-use paths
    _on = True
    harness.lockstep(socks, heads, at, args.requests)
    _on = False
    total = sum(_counts.values())
    print(f"{args.server} {args.traffic}: {total / args.requests:.0f} bytecodes/request")
    for (filename, name), count in _counts.most_common(args.top):
        where = filename.split("site-packages/")[-1].split("src/")[-1]
        print(f"{count / args.requests:8.1f}  {where}:{name}")
    sys.stdout.flush()
    os._exit(0)  # the server threads are daemons; no shutdown to wait for


if __name__ == "__main__":
    sys.exit(main())
