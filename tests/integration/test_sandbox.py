"""The sandbox is a real RayService HA set-up: it serves, places replicas like KubeRay's
sample, and its supervisor brings back lost pods with the state recovered from Redis."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from chaosraysvc.activities import pod_probes, serve_probes
from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc.runtime import sessions as procs
from chaosraysvc.sandbox.manager import Sandbox, SandboxError
from chaosraysvc.sandbox.spec import SandboxSpec
from chaosraysvc.sandbox.supervisor import temp_root
from chaosraysvc.serve import rest
from chaosraysvc.traffic import TrafficEngine, build_settings, read_traffic_log
from tests.support.polling import wait_for

pytestmark = pytest.mark.sandbox


def _post(sandbox: Sandbox) -> requests.Response:
    url = f"http://127.0.0.1:{sandbox.spec().serve_port}/fruit/"
    return requests.post(url, json=["PEAR", 12], timeout=5)


def test_fruit_request_answers_12(healthy_sandbox: Sandbox) -> None:
    response = _post(healthy_sandbox)
    assert response.status_code == 200
    assert response.json() == 12


def test_a_traffic_request_id_is_in_the_serve_proxy_and_replica_logs(
    healthy_sandbox: Sandbox, engines: list[TrafficEngine], tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{healthy_sandbox.spec().serve_port}"
    engine = TrafficEngine(build_settings(url=url, log_path=str(tmp_path / "t.jsonl")))
    engines.append(engine)
    engine.start()
    wait_for(lambda: engine.requests >= 5, 30)
    engine.stop()
    log = read_traffic_log(engine.log_path)
    assert log.requests and all(r["ok"] for r in log.requests)
    wanted = log.requests[-1]["id"]
    assert isinstance(wanted, str) and wanted.startswith(log.header["request_id_prefix"])
    state = healthy_sandbox.state()
    assert state is not None
    logs = temp_root(state.sandbox_id)

    def naming_files() -> set[str]:
        found = set()
        for path in logs.glob("*/session_*/logs/serve/*.log"):
            if path.parents[2].is_symlink():  # session_latest: the same files again
                continue
            with open(path, errors="replace") as handle:
                if any(f" {wanted} -- " in line for line in handle):
                    found.add(path.name)
        return found

    def proxy_and_ingress() -> set[str]:
        # the proxy that took it and the ingress replica that answered it (the replicas log
        # the request before the proxy, which logs it once it has answered)
        found = naming_files()
        proxy = any(n.startswith("proxy_") for n in found)
        ingress = any(n.startswith("replica_fruit_app_FruitMarket_") for n in found)
        return found if proxy and ingress else set()

    wait_for(
        proxy_and_ingress,
        30,
        what=f"{wanted} in a proxy log and a FruitMarket replica log",
        state=naming_files,
        interval=0.5,
    )


def test_each_worker_holds_one_replica_of_each_deployment_and_the_head_none(
    healthy_sandbox: Sandbox, configuration: dict[str, str]
) -> None:
    pods = {p.name for p in healthy_sandbox.status().pods if p.role == "worker"}

    def settled() -> dict[str, Any]:
        # After an earlier test deleted a worker, Serve may still list the dead node's
        # replicas for a moment (the node id has no pod any more): wait until it does not.
        nodes: dict[str, Any] = serve_probes.serve_replica_placement(configuration)["nodes"]
        workers = {name for name, info in nodes.items() if info["role"] == "worker"}
        return nodes if workers == pods else {}

    nodes = wait_for(settled, 60, what=f"Serve's placement on the worker pods {sorted(pods)}",
                     state=lambda: serve_probes.serve_replica_placement(configuration)["nodes"],
                     interval=1)  # fmt: skip
    heads = [info for info in nodes.values() if info["role"] == "head"]
    workers = {name: info for name, info in nodes.items() if info["role"] == "worker"}
    assert len(heads) == 1 and sum(heads[0]["replicas"].values()) == 0
    assert len(workers) == 2
    for info in workers.values():
        assert info["replicas"] == {
            "fruit_app/FruitMarket": 1,
            "fruit_app/MangoStand": 1,
            "fruit_app/OrangeStand": 1,
            "fruit_app/PearStand": 1,
        }
    assert serve_probes.serve_replicas_spread(1, True, configuration) is True


def test_probes_see_three_endpoints_and_healthy_serve(
    healthy_sandbox: Sandbox, configuration: dict[str, str]
) -> None:
    assert serve_probes.serve_endpoint_count(configuration) == 3
    assert serve_probes.serve_applications_healthy("", configuration) is True
    assert serve_probes.serve_applications_healthy("fruit_app", configuration) is True
    assert serve_probes.serve_applications_healthy("no_such_app", configuration) is False
    assert serve_probes.serve_proxies_healthy(configuration) is True
    assert pod_probes.head_pod_ready(configuration) is True
    assert pod_probes.gcs_fault_tolerance_enabled(configuration) is True
    assert pod_probes.redis_storage_persistent(configuration) is True


def test_status_cli_prints_pods_endpoints_and_applications(healthy_sandbox: Sandbox) -> None:
    cmd = [sys.executable, "-m", "chaosraysvc.cli", "sandbox", "status"]
    cmd += ["--state-dir", str(healthy_sandbox.state_dir)]
    table = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert "serve endpoints: 3/3 ready" in table and "fruit_app: RUNNING" in table
    data = json.loads(subprocess.run([*cmd, "--json"], capture_output=True, text=True).stdout)
    assert data["ready"] is True and data["endpoints_ready"] == 3
    roles = sorted(p["role"] for p in data["pods"])
    assert roles == ["head", "redis", "worker", "worker"]
    password = (healthy_sandbox.state_dir / "redis-password").read_text().strip()
    assert password not in table and password not in json.dumps(data)


def test_up_when_already_up_is_refused(healthy_sandbox: Sandbox) -> None:
    spec = SandboxSpec(state_dir=healthy_sandbox.state_dir, serve_port=1, dashboard_port=2)
    with pytest.raises(SandboxError, match="already up"):
        healthy_sandbox.up(spec)


def test_killed_head_processes_come_back_with_the_same_replicas(healthy_sandbox: Sandbox) -> None:
    spec = healthy_sandbox.spec()
    dashboard = f"http://127.0.0.1:{spec.dashboard_port}"
    replicas_before = rest.replica_ids(rest.get_serve_details(dashboard))
    state = healthy_sandbox.state()
    assert state is not None
    head = next(p for p in state.pods if p.role == "head")
    procs.signal_session(head.sid, signal.SIGKILL)  # the pod's processes die, as on a node crash
    killed = time.monotonic()

    def recovered() -> bool:
        status = healthy_sandbox.status()
        heads = [p for p in status.pods if p.role == "head"]
        return bool(heads) and heads[0].restarts == head.restarts + 1 and status.ready()

    wait_for(recovered, 180, what="the head to restart and the application RUNNING", interval=0.5)
    print(f"head recovered {time.monotonic() - killed:.1f}s after the kill")
    status = healthy_sandbox.status()
    assert [p.name for p in status.pods if p.role == "head"] == [head.name]  # restarted in place
    assert rest.replica_ids(rest.get_serve_details(dashboard)) == replicas_before
    assert _post(healthy_sandbox).json() == 12


def test_deleted_worker_pod_is_replaced_under_a_new_name(healthy_sandbox: Sandbox) -> None:
    worker = next(p for p in healthy_sandbox.status().pods if p.role == "worker")
    asked = time.time()
    healthy_sandbox.delete_pod(worker.name)

    def replaced() -> bool:
        status = healthy_sandbox.status()
        names = [p.name for p in status.pods if p.role == "worker"]
        return worker.name not in names and len(names) == 2 and status.ready()

    wait_for(replaced, 180, what="a new worker pod and the application RUNNING", interval=0.5)
    assert _post(healthy_sandbox).json() == 12
    state = healthy_sandbox.state()
    assert state is not None
    deleted = next(e for e in state.events if e["type"] == "Deleted" and e["pod"] == worker.name)
    # The deletion timestamp is when it was asked for, before the supervisor saw the pod gone.
    assert asked <= deleted["requested_at"] <= deleted["t"]


def test_deleting_an_unknown_pod_says_which_pods_exist(healthy_sandbox: Sandbox) -> None:
    with pytest.raises(ChaosRaySvcError, match="no pod 'nope'.*pods: "):
        healthy_sandbox.delete_pod("nope")


def test_sandbox_processes_run_in_their_recorded_sessions(healthy_sandbox: Sandbox) -> None:
    state = healthy_sandbox.state()
    assert state is not None
    for pod in state.pods:
        assert pod.alive(), pod.name
        assert procs.session_of(pod.sid) == pod.sid
    assert os.getsid(0) not in {p.sid for p in state.pods}


def test_doctor_sees_the_head_in_the_serve_service_on_the_real_sandbox(
    healthy_sandbox: Sandbox, configuration: dict[str, str]
) -> None:
    from chaosraysvc.activities.doctor_probes import ha_risks

    risks = {r["id"]: r for r in ha_risks("low", configuration)}
    assert "head-in-serve-svc" in risks  # the session sandbox keeps the head in the Service
    assert "gcs-storage-ephemeral" not in risks  # its Redis keeps an append-only file
    assert "gcs-ft-disabled" not in risks
    cmd = [sys.executable, "-m", "chaosraysvc.cli", "doctor", "--json"]
    cmd += ["--state-dir", str(healthy_sandbox.state_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    report = json.loads(proc.stdout)
    assert "head-in-serve-svc" in {r["id"] for r in report["risks"]}
    assert proc.returncode == (1 if report["counts"].get("high") else 0)


def test_a_head_listening_on_the_serve_port_is_in_the_service_whatever_the_spec_says(
    healthy_sandbox: Sandbox, configuration: dict[str, str]
) -> None:
    # What a cluster restored from a sandbox with the head in the Service did (issue 10,
    # defect 3): the spec said the head was excluded while its proxy kept the serve port.
    # Here the session sandbox's head proxy is on the serve port and its spec is made to
    # say otherwise; the endpoints and the doctor must follow the sockets, not the spec.
    from chaosraysvc.activities.doctor_probes import ha_risks

    spec = healthy_sandbox.spec()
    assert spec.head_in_serve_svc and not spec.endpoint_ports
    try:
        dataclasses.replace(spec, head_in_serve_svc=False).save()
        endpoints = healthy_sandbox.status(check_serve=False).endpoints
        assert sorted(e.role for e in endpoints if e.ready) == ["head", "worker", "worker"]
        risk = {r["id"]: r for r in ha_risks("low", configuration)}["head-in-serve-svc"]
        assert "head_in_serve_svc: false in" in risk["evidence"][0]
        assert f"listens on the serve port {spec.serve_port}" in risk["evidence"][0]
    finally:
        spec.save()
    assert healthy_sandbox.spec() == spec
