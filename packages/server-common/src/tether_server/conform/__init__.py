"""``tether conform URL``: test a running HTTP/1.1 or WebSocket server against the RFCs.

Groups of probes, each on fresh connections, every answer read by the core's
client roles (:class:`tether.http1.ClientConnection`, and
:class:`tether.websocket.Connection` for WebSocket frames):

- **vectors**: every bundled ``spec/http1`` request vector that holds for a
  server with default limits, each judged at its level (the keyword of the RFC
  sentence it quotes: MUST, SHOULD or MAY), with its section and that sentence;
- **smuggling**: a catalogue of request-smuggling and desync probes (CL.TE,
  TE.CL, obfuscated Transfer-Encoding, repeated and listed Content-Length, bare
  LF and CR, obs-fold, NUL and controls, chunk-size tricks, whitespace before
  the colon, HTTP/1.0 with Transfer-Encoding, huge chunk extensions), each sent
  with an ordinary request pipelined behind it;
- **robustness**: a slow request head, an idle keep-alive connection, and the
  sizes at which the request line, a header and a body are refused;
- **traffic**: valid requests drawn by Hypothesis from :mod:`tether.strategies`
  (``--requests``, ``--seed``), one at a time on a keep-alive connection, then
  pipelined (needs ``hypothesis``; skipped without it); a failing stream is reduced
  (for at most ``--shrink-seconds``) and printed as bytes, with its cut points;
- **websocket** (with ``--ws``, ``--ws-path`` or a ``ws://`` URL): the opening
  handshake and framing of RFC 6455, and echoes when the server echoes;
- **write-timeout** (with ``--slow``): a client that asks for a large response
  and never reads it; bounded by ``--slow-seconds``.

A MUST broken fails the run (exit status 1, as does a probe that could not
run); a SHOULD or robustness gap is a warning; a leniency the RFC allows (a MAY)
is reported as lenient. Neither changes the exit status.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from tether.conformance import vectors_version
from tether_server.conform._probes import Counterexample, Result, Verdict, vector_probe, vectors
from tether_server.conform._report import junit, text, to_json
from tether_server.conform._robustness import robustness
from tether_server.conform._smuggling import SMUGGLING, Smuggle, smuggle_probe, smuggling
from tether_server.conform._traffic import traffic
from tether_server.conform._wire import Observation, Target, exchange
from tether_server.conform._write_timeout import skipped, write_timeout
from tether_server.conform._ws import websocket

GROUPS = ("vectors", "smuggling", "robustness", "traffic", "websocket", "write-timeout")
#: What runs on an http:// URL without --only (write-timeout reports itself skipped
#: unless --slow is given; websocket needs an endpoint: --ws or --ws-path).
HTTP_GROUPS = ("vectors", "smuggling", "robustness", "traffic", "write-timeout")


def target_from_url(url: str, timeout: float = 2.0) -> Target:
    """The :class:`Target` for an ``http://host:port/path`` (or ``ws://``) URL."""
    parts = urlsplit(url if "//" in url else f"http://{url}")
    if parts.scheme not in ("http", "ws"):
        raise ValueError(f"only http:// and ws:// URLs can be tested (got {parts.scheme}://)")
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(host, port, (parts.netloc or host).encode("idna"), path.encode("ascii"), timeout)


def run(
    target: Target,
    groups: Sequence[str] = HTTP_GROUPS,
    *,
    slow_wait: float = 15.0,
    ws_path: str | None = None,
    requests: int = 50,
    seed: int = 0,
    shrink_seconds: float = 10.0,
    slow: bool = False,
    slow_seconds: float = 65.0,
    large_path: str | None = None,
) -> Iterator[Result]:
    """Run the chosen probe groups against ``target``; yield each result as it is known.

    ``ws_path`` is the WebSocket endpoint (default: the URL's path); a failing traffic
    stream is reduced for at most ``shrink_seconds``; the
    write-timeout probe runs only with ``slow`` and is bounded by ``slow_seconds``.
    """
    if "vectors" in groups:
        yield from vectors(target)
    if "smuggling" in groups:
        yield from smuggling(target)
    if "robustness" in groups:
        yield from robustness(target, slow_wait)
    if "traffic" in groups:
        yield from traffic(target, requests, seed, shrink_seconds)
    if "websocket" in groups:
        path = target.path if ws_path is None else ws_path.encode("ascii")
        yield from websocket(dataclasses.replace(target, path=path))
    if "write-timeout" in groups:
        if slow:
            large = None if large_path is None else large_path.encode("ascii")
            yield write_timeout(target, slow_seconds, large)
        else:
            yield skipped(slow_seconds)


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
    parser.add_argument(
        "--ws",
        action="store_true",
        help="also run the WebSocket probes against the URL's path (a ws:// URL runs only them)",
    )
    parser.add_argument(
        "--ws-path", metavar="PATH", help="run the WebSocket probes against PATH (e.g. /ws)"
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=50,
        metavar="N",
        help="how many generated requests the traffic group sends (default: 50)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="the traffic group's Hypothesis seed (default: 0)"
    )
    parser.add_argument(
        "--shrink-seconds",
        type=float,
        default=10.0,
        metavar="S",
        help="how long the traffic group may spend reducing a failing request stream to a "
        "small counterexample (default: 10; 0: report it as found)",
    )
    parser.add_argument(
        "--slow",
        action="store_true",
        help="also run the write-timeout probe (a client that never reads; takes --slow-seconds)",
    )
    parser.add_argument(
        "--slow-seconds",
        type=float,
        default=65.0,
        help="how long the write-timeout probe leaves a response unread (default: 65, "
        "past the common 60 s write timeouts)",
    )
    parser.add_argument(
        "--large-path",
        metavar="PATH",
        help="a path with a large response for the write-timeout probe (default: the URL's "
        "path, asked for many times)",
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
    websocket_url = args.url.startswith("ws://")
    groups: Sequence[str] = args.only or (
        ("websocket",)
        if websocket_url
        else HTTP_GROUPS + (("websocket",) if args.ws or args.ws_path else ())
    )
    results = list(
        run(
            target,
            groups,
            slow_wait=args.slow_wait,
            ws_path=args.ws_path,
            requests=args.requests,
            seed=args.seed,
            shrink_seconds=args.shrink_seconds,
            slow=args.slow or bool(args.only and "write-timeout" in args.only),
            slow_seconds=args.slow_seconds,
            large_path=args.large_path,
        )
    )
    version = vectors_version()
    if args.json:
        print(to_json(args.url, version, results))
    else:
        print(text(args.url, version, results, verbose=args.verbose), end="")
    if args.junit:
        Path(args.junit).write_bytes(junit(args.url, results))
    return exit_status(results)


def exit_status(results: Sequence[Result]) -> int:
    """1 if a MUST was broken (or a probe could not run, so a MUST went unchecked), else 0.

    Warnings (a SHOULD not followed, a robustness gap), leniencies a MAY allows and
    findings for information never fail the run: a probe reports a broken MUST, and only
    that, as :attr:`Verdict.FAIL` (a vector at its ``level``, see ``vector_probe``).
    """
    return 1 if any(r.verdict in (Verdict.FAIL, Verdict.ERROR) for r in results) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tether_server.conform URL``: the same as ``tether conform URL``."""
    parser = argparse.ArgumentParser(prog="tether conform", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return command(parser.parse_args(argv))


__all__ = [
    "GROUPS",
    "HTTP_GROUPS",
    "SMUGGLING",
    "Counterexample",
    "Observation",
    "Result",
    "Smuggle",
    "Target",
    "Verdict",
    "add_arguments",
    "command",
    "exchange",
    "exit_status",
    "main",
    "run",
    "smuggle_probe",
    "target_from_url",
    "vector_probe",
]
