"""A sandbox whose proxies each have a port of their own, behind a kube-proxy-like Service.

This module brings up its own sandbox (`endpoint_ports=True`, and a Redis without a
volume, like the HA sample's) and brings it down when its tests are done, before the
session sandbox of the other modules starts: the two never run at once. Its tests run in
file order: the Redis deletion, which restarts the whole cluster, comes last.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import requests

from chaosraysvc.sandbox.cli import render_status
from chaosraysvc.sandbox.manager import Sandbox
from chaosraysvc.traffic.log import read_traffic_log
from chaosraysvc.traffic.stats import summarize

pytestmark = pytest.mark.sandbox
ROOT = Path(__file__).resolve().parents[2]
CHAOS = Path(sys.executable).parent / "chaos"


@pytest.fixture(scope="module")
def endpoint_sandbox(
    start_sandbox: Callable[..., AbstractContextManager[Sandbox]],
) -> Iterator[Sandbox]:
    with start_sandbox(endpoint_ports=True, redis_storage="ephemeral") as box:
        yield box


def fruit(url: str) -> str:
    return requests.post(f"{url}/fruit/", json=["PEAR", 12], timeout=5).text


def test_every_proxy_answers_on_its_own_port_and_the_service_balances(
    endpoint_sandbox: Sandbox,
) -> None:
    status = endpoint_sandbox.status()
    urls = [e.url for e in status.endpoints]

    assert status.ready()
    assert len(status.endpoints) == 3 and len(set(urls)) == 3
    assert status.serve_url not in urls
    assert {e.role for e in status.endpoints} == {"head", "worker"}
    assert [fruit(url) for url in urls] == ["12", "12", "12"]
    assert {fruit(status.serve_url) for _ in range(10)} == {"12"}
    shown = render_status(status)
    assert all(url in shown for url in urls)


def run_per_endpoint(sandbox: Sandbox, experiment: str, tmp_path: Path) -> dict[str, Any]:
    """Run `experiment` through `chaos` with one traffic stream per serve endpoint."""
    env = dict(os.environ) | {
        "RAYSVC_TARGET": "sandbox",
        "RAYSVC_SANDBOX_DIR": str(sandbox.state_dir),
        "RAYSVC_EXPECTED_ENDPOINTS": "3",
        "RAYSVC_RECOVERY_TIMEOUT": "240",
        "RAYSVC_TRAFFIC_ENDPOINTS": "serve_endpoints",
        "RAYSVC_TRAFFIC_ENDPOINT_MODE": "per_endpoint",
    }
    journal = tmp_path / "journal.json"
    cmd = [str(CHAOS), "--no-version-check", "--log-file", str(tmp_path / "chaos.log"), "run"]
    cmd += ["--journal-path", str(journal), str(ROOT / "experiments" / f"{experiment}.json")]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    print(proc.stdout[-3000:], proc.stderr[-3000:])
    assert journal.exists(), "chaos run wrote no journal"
    return dict(json.loads(journal.read_text()))


def test_per_endpoint_traffic_puts_the_failures_on_the_deleted_workers_proxy(
    endpoint_sandbox: Sandbox, tmp_path: Path
) -> None:
    before = {e.pod: e.url for e in endpoint_sandbox.status().endpoints}

    run = run_per_endpoint(endpoint_sandbox, "worker-kill", tmp_path)

    deleted = next(r for r in run["run"] if r["activity"]["name"] == "delete-worker-pod")
    gone = deleted["output"]["deleted"]["name"]
    summary = summarize(read_traffic_log(tmp_path / "journal-traffic.jsonl"))
    by_endpoint = summary["by_endpoint"]

    assert set(by_endpoint) == set(before)  # one stream per endpoint, labelled by pod
    assert by_endpoint[gone]["failures"] > 0
    for pod, counts in by_endpoint.items():
        assert counts["successes"] > 0, pod
    causes = {c["pattern"]: c for c in summary["likely_causes"]}
    assert causes["deleted-pod-proxy"]["failures"] == by_endpoint[gone]["failures"]
    assert gone in causes["deleted-pod-proxy"]["evidence"]
    # The replacement pod is a new endpoint, on a new port; the deleted one is gone.
    after = {e.pod: e.url for e in endpoint_sandbox.status().endpoints}
    assert gone not in after and before[gone] not in after.values()
    assert len(after) == 3


def test_the_doctor_predicts_the_loss_of_the_redis_without_a_volume(
    endpoint_sandbox: Sandbox,
) -> None:
    cmd = [sys.executable, "-m", "chaosraysvc.cli", "doctor", "--json"]
    cmd += ["--state-dir", str(endpoint_sandbox.state_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    risks = {r["id"]: r for r in json.loads(proc.stdout)["risks"]}
    assert risks["gcs-storage-ephemeral"]["severity"] == "high"
    assert "ephemeral" in json.dumps(risks["gcs-storage-ephemeral"])
    assert proc.returncode == 1  # a high risk


def test_redis_loss_fails_every_endpoint_and_the_report_names_the_risk(
    endpoint_sandbox: Sandbox, tmp_path: Path
) -> None:
    run = run_per_endpoint(endpoint_sandbox, "redis-kill", tmp_path)

    assert run["deviated"] is True
    summary = summarize(read_traffic_log(tmp_path / "journal-traffic.jsonl"))
    assert len(summary["by_endpoint"]) == 3
    assert all(c["failures"] > 0 for c in summary["by_endpoint"].values())
    causes = {c["pattern"]: c for c in summary["likely_causes"]}
    assert causes["cluster-restart-after-redis-loss"]["risk"] == "gcs-storage-ephemeral"
    assert "all 3 endpoints" in causes["cluster-restart-after-redis-loss"]["evidence"]

    report = tmp_path / "report.md"
    cmd = [sys.executable, "-m", "chaosraysvc.cli", "report", str(tmp_path / "journal.json")]
    cmd += ["-o", str(report)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    text = report.read_text()
    assert "cluster-restart-after-redis-loss" in text and "gcs-storage-ephemeral" in text
