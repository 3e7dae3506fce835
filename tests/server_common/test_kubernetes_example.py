"""examples/deploy/kubernetes.yaml is checked against the server it runs: its args parse with
the real ``tether`` parser, its probes name the health paths that --health-path-prefix serves
(and a real server answers them 200), and the graceful-stop numbers fit together (the kubelet's
SIGKILL never cuts a drain short)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import SLOW_APP, LogLines, free_port, reaped, spawn
from tether_asyncio._cli import build_parser

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "examples" / "deploy" / "kubernetes.yaml"


def _deployment() -> dict[str, Any]:
    documents = list(yaml.safe_load_all(MANIFEST.read_text()))
    kinds = {d["kind"]: d for d in documents}
    assert set(kinds) == {"Deployment", "Service"}
    service = kinds["Service"]
    deployment = kinds["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    return deployment  # type: ignore[no-any-return]


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container  # type: ignore[no-any-return]


def test_probes_and_grace_fit_the_server_options() -> None:
    deployment = _deployment()
    container = _container(deployment)
    args = build_parser().parse_args(container["args"][1:])
    prefix = args.health_path_prefix
    assert prefix
    assert container["startupProbe"]["httpGet"]["path"] == f"{prefix}/startup"
    assert container["readinessProbe"]["httpGet"]["path"] == f"{prefix}/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == f"{prefix}/live"
    port_name = container["ports"][0]["name"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == port_name
    assert container["ports"][0]["containerPort"] == args.port
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > pre_stop + args.timeout_graceful_shutdown, "SIGKILL would cut the drain"
    assert args.host == "0.0.0.0"


def test_the_probe_paths_are_answered_by_a_real_server(tmp_path: Path) -> None:
    container = _container(_deployment())
    args = list(container["args"][2:])
    args[0] = "slowapp:app"  # the test's app instead of myproject.main:app
    args = [a for a in args if not a.startswith(("--host", "--port", "--workers"))]
    (tmp_path / "slowapp.py").write_text(SLOW_APP)
    port = free_port()
    proc = spawn("tether_asyncio", tmp_path, "serve", *args, "--port", str(port))
    with reaped(proc):
        LogLines(proc).wait_for(f":{port}")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            path = container[probe]["httpGet"]["path"]
            response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)
            assert response.status_code == 200, path
            assert response.json()["status"] == "ok"
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
