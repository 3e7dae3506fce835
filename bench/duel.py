"""Two servers on one core at the same time: a ratio that a noisy machine disturbs little.

    python bench/duel.py "tether (asyncio), metrics" "tether (asyncio)"     # 6 rounds of 8 s
    python bench/duel.py "tether (asyncio)" "uvicorn (httptools)" --rounds 4 --seconds 5
    python bench/duel.py --list

On a shared virtual machine, requests per second of one server move by 20-30 % from one run
to the next, more than the differences a bar asks about (the 5 % that ``--metrics-port`` may
cost). Here both servers (rows of ``bench/server.py``, same app, same options) run pinned to
the same CPU at once, each under its own wrk (``-c50``, both on the other CPU), so whatever
slows the machine slows both alike; the scheduler gives each half the core, and the ratio of
the requests they complete is the inverse ratio of their CPU time per request. Rounds
alternate which server starts first. The null duel (a row against itself) shows the method's
own spread: a few per cent per round here.

Only for servers that serve from one thread (the ASGI rows). The scheduler shares a core
between threads, and a thread-pool server sharing one changes how it works, not only how fast:
tether-threaded against waitress read 1.1x by requests and 1.6x by CPU per request in a duel,
against about 2.4x each alone (its loop hands every request to a worker, and those handoffs
wait on the scheduler once the core is shared). Each round also prints both servers' CPU time
per request.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench import _core as core
    from bench import _harness as harness
    from bench.server import MIX, _commands, _mix_script
else:  # run as a script: bench/ is on sys.path
    import _core as core
    import _harness as harness
    from server import MIX, _commands, _mix_script

HERE = Path(__file__).resolve().parent


def _start(command: list[str], port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    # The access log goes to a file, as in bench/server.py (and as a server's stderr does in
    # production).
    with open(Path(tempfile.gettempdir()) / f"tether-duel-{port}.log", "wb") as log:
        proc = subprocess.Popen(
            [*harness.pin(0), *command],
            cwd=HERE,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.fileno(),
        )
    harness.wait_listening(port, proc)
    return proc


def _wrk(port: int, seconds: int, script: str | None) -> subprocess.Popen[str]:
    where = ["-s", script] if script else []
    return subprocess.Popen(
        [
            *harness.pin(1),
            "wrk",
            "-t1",
            "-c50",
            f"-d{seconds}s",
            *where,
            f"http://127.0.0.1:{port}/",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _count(proc: subprocess.Popen[str]) -> int:
    out, _ = proc.communicate()
    found = harness._REQUESTS.search(out)
    if found is None:
        raise RuntimeError(f"could not read wrk output:\n{out}")
    return int(found.group(1))


def duel_round(first: str, second: str, seconds: int) -> tuple[int, int, float, float]:
    """Requests ``first`` and ``second`` completed while sharing one core for ``seconds``, and
    each one's server CPU time per request (microseconds)."""
    ports = (harness.free_port(), harness.free_port())
    names = (first, second)
    # A "realistic mix" row is driven through distinct request heads, as in bench/server.py.
    scripts = [_mix_script() if MIX in name else None for name in names]
    procs = [_start(_commands(port)[name], port) for name, port in zip(names, ports)]
    try:
        for port, script in zip(ports, scripts):  # warm up, one at a time
            _count(_wrk(port, 1, script))
        before = [harness.cpu_seconds(proc.pid) for proc in procs]
        runs = [_wrk(port, seconds, script) for port, script in zip(ports, scripts)]
        a, b = (_count(run) for run in runs)
        cpu = [harness.cpu_seconds(proc.pid) - start for proc, start in zip(procs, before)]
        return a, b, cpu[0] / max(a, 1) * 1e6, cpu[1] / max(b, 1) * 1e6
    finally:
        for proc in procs:
            harness.stop(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--core", choices=core.CHOICES, default="pure", help=core.HELP)
    parser.add_argument("a", nargs="?", help="a row of bench/server.py (see --list)")
    parser.add_argument("b", nargs="?", help="the row it is compared with")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--list", action="store_true", help="print the rows and exit")
    args = parser.parse_args()
    print(core.use(args.core), flush=True)
    rows = _commands(0)
    if args.list or args.a is None or args.b is None:
        print("\n".join(rows))
        return 0 if args.list else 2
    for name in (args.a, args.b):
        if name not in rows:
            parser.error(f"no row {name!r} (see --list)")
    ratios, cpu_ratios = [], []
    for n in range(args.rounds):
        # Alternate which starts (and is read) first, so that an order bias cancels out.
        if n % 2 == 0:
            a, b, cpu_a, cpu_b = duel_round(args.a, args.b, args.seconds)
        else:
            b, a, cpu_b, cpu_a = duel_round(args.b, args.a, args.seconds)
        ratios.append(a / b)
        cpu_ratios.append(cpu_b / cpu_a)
        print(
            f"round {n + 1}: {args.a}={a} ({cpu_a:.1f} us CPU/request) "
            f"{args.b}={b} ({cpu_b:.1f} us) ratio={a / b:.3f} by CPU={cpu_b / cpu_a:.3f}",
            flush=True,
        )
    spread = statistics.stdev(ratios) if len(ratios) > 1 else 0.0
    print(
        f"{args.a} / {args.b}: median ratio={statistics.median(ratios):.3f} "
        f"mean={statistics.mean(ratios):.3f} stdev={spread:.3f} over {len(ratios)} rounds"
    )
    # The scheduler shares the core between threads, not processes: a server with more busy
    # threads (a WSGI pool) gets more than half of it, and the ratio of requests is then not
    # the inverse ratio of CPU per request. This line is, for any kind of server.
    print(f"{args.a} / {args.b}: median ratio by CPU/request={statistics.median(cpu_ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
