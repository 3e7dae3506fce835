"""Behind nginx: two ``tether serve`` processes against two uvicorn (httptools) processes.

Run: ``python bench/proxy.py [--seconds S] [--rounds N] [--access-log]``

The same nginx configuration (examples/deploy/nginx.conf, its placeholders filled in: upstream
keep-alive on) sits in front of two server processes each time; the app is hello world with
the lifespan protocol on; both servers run their default event loop (uvloop when installed). wrk drives nginx with 50 keep-alive connections. The rounds
alternate tether and uvicorn in one run, and each side's best round counts (the least
disturbed by other load on the machine). The last line ends in ``ratio=<number>``: how many
times tether's requests per second uvicorn's are (above 1: tether is faster); the servers'
CPU time per request (both processes, best round) is printed beside it. Both servers run
without their access logs (nginx has its own) unless ``--access-log``: then each writes its
own as shipped (log level info), to a file as a service's stderr goes. On a 2-core
machine nginx, the servers and wrk share the CPUs, so the ratio understates the servers'
difference: nginx's own cost is in both.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench import _core as core
    from bench import _harness as harness
else:  # run as a script: bench/ is on sys.path
    import _core as core
    import _harness as harness

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "examples" / "deploy" / "nginx.conf"
PROCESSES = 2

HELLO = """
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()  # lifespan.startup, then lifespan.shutdown
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]})
    await send({"type": "http.response.body", "body": b"Hello, world!"})
"""


def _server_command(server: str, app_dir: Path, port: int, access_log: bool) -> list[str]:
    common = ["--app-dir", str(app_dir), "--port", str(port), "--lifespan", "on"]
    # "--log-level warning" would drop the access lines too (they are INFO).
    logs = ["--log-level", "info"] if access_log else ["--no-access-log", "--log-level", "warning"]
    if server == "tether":
        return [sys.executable, "-m", "tether_asyncio", "serve", "hello:app", *common, *logs]
    return [sys.executable, "-m", "uvicorn", "hello:app", *common, "--http", "httptools", *logs]


def _nginx_conf(run_dir: Path, listen: int, ports: list[int]) -> str:
    values = {
        "RUN_DIR": str(run_dir),
        "LISTEN": f"127.0.0.1:{listen}",
        "TLS_LISTEN": f"127.0.0.1:{harness.free_port()}",
        "SERVERS": "\n        ".join(f"server 127.0.0.1:{port};" for port in ports),
        "CERT": str(run_dir / "cert.pem"),
        "KEY": str(run_dir / "key.pem"),
    }
    lines = []
    for line in TEMPLATE.read_text().splitlines(keepends=True):
        if not line.lstrip().startswith("#"):
            line = re.sub(r"\{\{([A-Z_]+)\}\}", lambda m: values[m[1]], line)  # noqa: PLW2901
        lines.append(line)
    text = "".join(lines)
    if os.geteuid() == 0:  # nginx's workers would switch to "nobody"
        text = "user root;\n" + text
    return text.replace("access_log " + str(run_dir) + "/access.log upstream;", "access_log off;")


@contextlib.contextmanager
def _behind_nginx(
    server: str, work: Path, run_dir: Path, access_log: bool = False
) -> Iterator[tuple[int, list[int]]]:
    """Two ``server`` processes serving ``work/hello.py`` behind nginx running in ``run_dir``,
    for the block: nginx's port and the servers' pids."""
    run_dir.mkdir(parents=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(run_dir / "key.pem"),
         "-out", str(run_dir / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    ports = [harness.free_port() for _ in range(PROCESSES)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([
        *filter(None, [os.environ.get("TETHER_BENCH_CORE")]),  # the compiled core, if chosen
        *(str(ROOT / "packages" / name / "src")
          for name in ("core", "server-common", "server-asyncio", "server-threaded")),
    ]))  # fmt: skip
    log = open(run_dir / "servers.log", "wb")  # noqa: SIM115 - closed below
    servers = [
        subprocess.Popen(
            _server_command(server, work, port, access_log), env=env, stdout=log, stderr=log
        )
        for port in ports
    ]
    listen = harness.free_port()
    conf = run_dir / "nginx.conf"
    conf.write_text(_nginx_conf(run_dir, listen, ports))
    nginx_exe = shutil.which("nginx") or "/usr/sbin/nginx"
    nginx = subprocess.Popen([nginx_exe, "-p", str(run_dir), "-c", str(conf),
                              "-g", "daemon off;"])  # fmt: skip
    try:
        for port, proc in zip(ports, servers, strict=True):
            harness.wait_listening(port, proc)
        harness.wait_listening(listen, nginx)
        yield listen, [proc.pid for proc in servers]
    finally:
        for proc in [nginx, *servers]:
            proc.terminate()
        for proc in [nginx, *servers]:
            proc.wait(30)
        log.close()


def _wrk(port: int, seconds: float) -> tuple[float, int]:
    """Requests per second and requests wrk (2 threads, 50 connections, not pinned: nginx and
    the servers share the two CPUs with it) measures through nginx; errors fail the run."""
    out = subprocess.run(
        ["wrk", "-t2", "-c50", f"-d{harness.wrk_seconds(seconds)}s", f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    if "Non-2xx" in out or "Socket errors" in out:
        sys.exit(f"wrk reported errors:\n{out}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    if rate is None or count is None:
        sys.exit(f"could not read wrk output:\n{out}")
    return float(rate[1]), int(count[1])


def _measure(port: int, pids: list[int], seconds: float) -> tuple[float, float]:
    """Requests per second through nginx, and the servers' CPU microseconds per request (a
    steadier number on a busy machine: other load slows a server, it rarely makes it work
    more), after a warm-up run."""
    _wrk(port, 1)  # warm-up: connections, pools, caches
    before = sum(harness.cpu_seconds(pid) for pid in pids)
    rate, requests = _wrk(port, seconds)
    spent = sum(harness.cpu_seconds(pid) for pid in pids) - before
    return rate, spent / max(requests, 1) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--core", choices=core.CHOICES, default="pure", help=core.HELP)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per server, alternating")
    parser.add_argument(
        "--access-log", action="store_true", help="both servers write their access logs"
    )
    args = parser.parse_args()
    print(core.use(args.core), flush=True)
    nginx = shutil.which("nginx") or Path("/usr/sbin/nginx").exists()
    if shutil.which("wrk") is None or not nginx:
        sys.exit("needs wrk and nginx")
    best = {"tether": 0.0, "uvicorn": 0.0}
    cpu = {"tether": float("inf"), "uvicorn": float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "hello.py").write_text(HELLO)
        for n in range(args.rounds):
            for server in ("tether", "uvicorn"):
                run_dir = work / f"{n}-{server}"
                with _behind_nginx(server, work, run_dir, args.access_log) as (port, pids):
                    rate, micros = _measure(port, pids, args.seconds)
                print(f"round {n + 1}: {server:8s} {rate:9.0f} req/s, servers' CPU "
                      f"{micros:6.1f} us/request", flush=True)  # fmt: skip
                best[server] = max(best[server], rate)
                cpu[server] = min(cpu[server], micros)
    ratio = best["tether"] / best["uvicorn"]
    print(f"nginx + {PROCESSES} x tether serve: {best['tether']:.0f} req/s; "
          f"nginx + {PROCESSES} x uvicorn --http httptools: {best['uvicorn']:.0f} req/s; "
          f"wrk -c50, best of {args.rounds} x {args.seconds:g} s"
          f"{', access logs on' if args.access_log else ''}; servers' CPU per request "
          f"{cpu['tether']:.1f} vs {cpu['uvicorn']:.1f} us; ratio={ratio:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
