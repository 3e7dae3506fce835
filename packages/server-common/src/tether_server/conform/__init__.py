"""``tether conform URL``: test a running HTTP/1.1 server against the RFCs, over sockets.

Three groups of probes, each on fresh connections, every answer read by the
core's client role (:class:`tether.http1.ClientConnection`):

- **vectors**: every bundled ``spec/http1`` request vector that holds for a
  server with default limits, with the RFC section of each failure;
- **smuggling**: a catalogue of request-smuggling and desync probes (CL.TE,
  TE.CL, obfuscated Transfer-Encoding, repeated and listed Content-Length, bare
  LF and CR, obs-fold, NUL and controls, chunk-size tricks, whitespace before
  the colon, HTTP/1.0 with Transfer-Encoding, huge chunk extensions), each sent
  with an ordinary request pipelined behind it;
- **robustness**: a slow request head, an idle keep-alive connection, and the
  sizes at which the request line, a header and a body are refused.

A MUST broken fails the run (exit status 1); a SHOULD or robustness gap is a
warning; a leniency the RFC allows (a MAY) is reported as lenient.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from tether.conformance import vectors_version
from tether_server.conform._probes import (
    SMUGGLING,
    Result,
    Smuggle,
    Verdict,
    robustness,
    smuggle_probe,
    smuggling,
    vectors,
)
from tether_server.conform._report import junit, text, to_json
from tether_server.conform._wire import Observation, Target, exchange

GROUPS = ("vectors", "smuggling", "robustness")


def target_from_url(url: str, timeout: float = 2.0) -> Target:
    """The :class:`Target` for an ``http://host:port/path`` URL."""
    parts = urlsplit(url if "//" in url else f"http://{url}")
    if parts.scheme != "http":
        raise ValueError(f"only http:// URLs can be tested (got {parts.scheme}://)")
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(host, port, (parts.netloc or host).encode("idna"), path.encode("ascii"), timeout)


def run(
    target: Target, groups: Sequence[str] = GROUPS, *, slow_wait: float = 15.0
) -> Iterator[Result]:
    """Run the chosen probe groups against ``target``; yield each result as it is known."""
    if "vectors" in groups:
        yield from vectors(target)
    if "smuggling" in groups:
        yield from smuggling(target)
    if "robustness" in groups:
        yield from robustness(target, slow_wait)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``tether conform``."""
    parser.add_argument(
        "url", metavar="URL", help="the server to test, e.g. http://127.0.0.1:8000/"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead")
    parser.add_argument("--junit", metavar="FILE", help="also write JUnit XML to FILE")
    parser.add_argument(
        "--only", action="append", choices=GROUPS, help="run only this group (repeatable)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=2.0,
        help="seconds to wait for an answer before concluding none is coming (default: 2)",
    )
    parser.add_argument(
        "--slow-wait",
        type=float,
        default=15.0,
        help="seconds to wait for the server to close a slow head or an idle connection (default: 15)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="list passed probes too")


def command(args: argparse.Namespace) -> int:
    """Run ``tether conform`` with parsed arguments; 1 if a MUST failed, 2 on a usage error."""
    try:
        target = target_from_url(args.url, args.timeout)
    except (ValueError, UnicodeError) as exc:
        print(f"tether conform: error: {exc}", file=sys.stderr)
        return 2
    probe = exchange(target, [b""], expect=())
    if probe.invalid and probe.invalid.startswith("cannot connect"):
        print(f"tether conform: error: {probe.invalid}", file=sys.stderr)
        return 2
    results = list(run(target, args.only or GROUPS, slow_wait=args.slow_wait))
    version = vectors_version()
    if args.json:
        print(to_json(args.url, version, results))
    else:
        print(text(args.url, version, results, verbose=args.verbose), end="")
    if args.junit:
        Path(args.junit).write_bytes(junit(args.url, results))
    return 1 if any(r.verdict in (Verdict.FAIL, Verdict.ERROR) for r in results) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tether_server.conform URL``: the same as ``tether conform URL``."""
    parser = argparse.ArgumentParser(prog="tether conform", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return command(parser.parse_args(argv))


__all__ = [
    "GROUPS",
    "SMUGGLING",
    "Observation",
    "Result",
    "Smuggle",
    "Target",
    "Verdict",
    "add_arguments",
    "command",
    "exchange",
    "main",
    "run",
    "smuggle_probe",
    "target_from_url",
]
