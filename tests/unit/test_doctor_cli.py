"""`chaosraysvc doctor` and `ha_risks` on a sandbox that is down: only its spec.json exists.

The dashboard is either a closed loopback port (the facts degrade to the spec, with a note)
or a small dashboard double on loopback answering a replica placement.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from chaoslib.discovery.discover import discover_probes
from chaoslib.exceptions import ActivityFailed

from chaosraysvc.activities import doctor_probes
from chaosraysvc.activities.doctor_probes import ha_risks
from chaosraysvc.cli import main
from chaosraysvc.runtime.ports import free_port
from chaosraysvc.sandbox.spec import SandboxSpec


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RAYSVC_TARGET", "RAYSVC_SANDBOX_DIR", "RAYSVC_DASHBOARD_URL", "RAYSVC_NAME"):
        monkeypatch.delenv(name, raising=False)


def sandbox(tmp_path: Path, **spec: Any) -> Path:
    """Write a sandbox spec.json (no process runs) whose dashboard port is closed."""
    SandboxSpec(state_dir=tmp_path, dashboard_port=free_port(), **spec).save()
    return tmp_path


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["doctor", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_an_ephemeral_redis_sandbox_is_a_high_risk_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_dir = sandbox(tmp_path, redis_storage="ephemeral")

    code, out, err = doctor(capsys, "--state-dir", str(state_dir))

    assert (code, err) == (1, "")
    assert out.startswith(f"HA check of sandbox default/rayservice-ha ({state_dir})\n")
    assert "3 risk(s): 1 high, 1 medium, 1 low" in out
    table = out.split("\n\n")[1].splitlines()
    assert table[0].split() == ["SEVERITY", "RISK", "TITLE"]
    assert [line.split()[:2] for line in table[1:]] == [
        ["high", "gcs-storage-ephemeral"],
        ["medium", "head-in-serve-svc"],
        ["low", "no-spare-worker"],
    ]
    text = " ".join(out.split())  # long lines are wrapped
    assert f"redis_storage: ephemeral in {state_dir}/spec.json" in text
    assert "GCS store: one Redis: the sandbox runs one Redis process (no Sentinel)" in text
    assert "live replica placement not inspected (the sandbox is not up" in text


def test_a_fixed_sandbox_has_no_risk_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_dir = sandbox(tmp_path, head_in_serve_svc=False, workers=3)

    code, out, _ = doctor(capsys, "--target", "sandbox", "--state-dir", str(state_dir))

    assert code == 0
    assert "no HA risk found (14 rules checked)" in out


def test_json_output_and_severity_filter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_dir = sandbox(tmp_path)  # persistent Redis, head in the serve "Service", 2 workers

    code, out, _ = doctor(capsys, "--state-dir", str(state_dir), "--json")
    document = json.loads(out)

    assert code == 0
    assert [(r["id"], r["severity"]) for r in document["risks"]] == [
        ("head-in-serve-svc", "medium"),
        ("no-spare-worker", "low"),
    ]
    assert document["facts"]["gcs_storage_persistent"] is True
    assert document["facts"]["redis_topology"] == "single"
    assert document["facts"]["worker_groups"][0]["reconnect_timeout_s"] == 600.0
    assert document["notes"] and "not inspected" in document["notes"][0]

    code, out, _ = doctor(capsys, "--state-dir", str(state_dir), "--min-severity", "medium")
    assert code == 0
    assert "no-spare-worker" not in out
    assert "(1 risk(s) below medium not shown)" in out


def test_a_directory_without_a_sandbox_cannot_be_inspected_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = doctor(capsys, "--state-dir", str(tmp_path / "none"))

    assert (code, out) == (3, "")
    [line] = err.splitlines()
    assert line.startswith(f"chaosraysvc doctor: could not inspect the sandbox in {tmp_path}")
    assert "run `chaosraysvc sandbox up` first" in line


def test_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["doctor", "--min-severity", "urgent"])
    assert exit_info.value.code == 2

    monkeypatch.setenv("RAYSVC_TARGET", "nomad")
    code, _, err = doctor(capsys, "--state-dir", str(tmp_path))
    assert code == 2
    assert "unknown target 'nomad'" in err


# -- live placement through a dashboard double -------------------------------------------------


def _node(node_id: str, head: bool) -> dict[str, Any]:
    raylet = {"nodeId": node_id, "nodeManagerPort": 0, "isHeadNode": head, "state": "ALIVE"}
    return {"ip": "127.0.0.1", "raylet": raylet}


def test_replicas_on_the_head_are_read_from_the_sandbox_dashboard(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    dashboard: tuple[str, dict[str, Any]],
) -> None:
    url, documents = dashboard
    head, worker = "a" * 56, "b" * 56
    replicas = [
        {"replica_id": f"r{i}", "state": "RUNNING", "node_id": node}
        for i, node in enumerate((head, head))
    ]
    documents["/nodes"] = {"data": {"summary": [_node(head, True), _node(worker, False)]}}
    documents["/api/serve/applications"] = {
        "proxy_location": "EveryNode",
        "proxies": {head: {"status": "HEALTHY"}, worker: {"status": "HEALTHY"}},
        "applications": {
            "fruit_app": {
                "deployments": {
                    "PearStand": {"replicas": replicas, "deployment_config": {}},
                }
            }
        },
    }
    state_dir = sandbox(tmp_path, head_in_serve_svc=False, workers=3)

    code, out, _ = doctor(capsys, "--state-dir", str(state_dir), "--dashboard-url", url, "--json")
    document = json.loads(out)

    assert code == 1
    [risk] = document["risks"]
    assert (risk["id"], risk["severity"]) == ("replicas-on-head", "high")
    assert risk["evidence"] == [f"fruit_app/PearStand live: 2 on {'a' * 12} (dashboard {url})"]
    assert document["facts"]["head_proxy_evidence"].startswith("a Serve proxy runs on the head")
    assert document["notes"] == []


# -- the probe ---------------------------------------------------------------------------------


def test_ha_risks_is_a_documented_probe(tmp_path: Path) -> None:
    [activity] = discover_probes("chaosraysvc.activities.doctor_probes")
    assert (activity["name"], activity["type"]) == ("ha_risks", "probe")
    assert doctor_probes.__all__ == ["ha_risks"]
    assert ha_risks.__doc__ and ha_risks.__doc__.strip().splitlines()[0].endswith(".")
    params = list(inspect.signature(ha_risks).parameters)
    assert params == ["min_severity", "configuration", "secrets"]

    configuration = {"sandbox_state_dir": str(sandbox(tmp_path, redis_storage="ephemeral"))}
    assert [r["id"] for r in ha_risks("high", configuration)] == ["gcs-storage-ephemeral"]
    with pytest.raises(ActivityFailed, match="run `chaosraysvc sandbox up` first"):
        ha_risks(configuration={"sandbox_state_dir": str(tmp_path / "none")})
