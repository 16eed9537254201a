"""The experiments, unchanged, through the kubernetes target on the real one-machine node.

`chaosraysvc-lab node up` brings up the control plane, the real KubeRay operator and our
process kubelet running KubeRay's HA sample; `chaos run` then uses the kubernetes target as a
user would, with the settings `up` wrote. The real operator recreates the deleted pods.
`chaosraysvc-lab node down` must leave no process, network namespace, link, route or mount
point behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosraysvc import rollout
from chaosraysvc.targets import resolve_target
from chaosraysvc_lab import kubeconfig, network
from chaosraysvc_lab.agent import try_lock
from chaosraysvc_lab.stack import KubeNode
from tests.support.polling import wait_for

from .conftest import requires_namespaces

pytestmark = requires_namespaces
REPO = Path(__file__).resolve().parents[4]
CHAOS = Path(sys.executable).parent / "chaos"


def _settings(env_file: Path) -> dict[str, str]:
    pairs = (
        line.removeprefix("export ").split("=", 1)
        for line in env_file.read_text().split("\n")
        if line
    )
    return {key: value for key, value in pairs}


@pytest.fixture(scope="module")
def node() -> Iterator[tuple[Path, dict[str, str]]]:
    state_dir = Path(tempfile.mkdtemp(prefix="crs-node-"))
    up = subprocess.run(
        [sys.executable, "-m", "chaosraysvc_lab.cli", "node", "up", "--state-dir", str(state_dir)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        assert "RayService Ready in" in up.stdout
        yield state_dir, _settings(state_dir / "kube.env")
    finally:
        index = (
            json.loads((state_dir / "node.json").read_text()).get("node_index", 0)
            if (state_dir / "node.json").exists()
            else 0
        )
        down = subprocess.run(
            [sys.executable, "-m", "chaosraysvc_lab.cli", "node", "down", "--state-dir",
             str(state_dir)], capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        leftovers = KubeNode(state_dir).down()
        assert down.returncode == 0 and not leftovers, down.stdout + down.stderr
        # Checked under the machine's node lock: a node waiting for it (a campaign, another
        # test) may have taken the same index and route the moment this one went down.
        lock = try_lock()
        try:
            if index and lock is not None:
                net = network.NodeNetwork(index)
                assert net.bridge not in network.ip("link", "show", check=False)
                assert net.netns_prefix not in network.ip("netns", "list", check=False)
            if lock is not None:
                assert "198.19.0.0/20" not in network.ip("route", "show", "table", "local")
        finally:
            if lock is not None:
                lock.close()
        shutil.rmtree(state_dir, ignore_errors=True)


def _run(
    experiment: str, settings: dict[str, str], tmp_path: Path, timeout: float = 600, **extra: str
) -> dict[str, Any]:
    env = {**os.environ, **settings, **extra}
    done = subprocess.run(
        [str(CHAOS), "run", "--journal-path", str(tmp_path / "journal.json"),
         str(REPO / "experiments" / experiment)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert (tmp_path / "journal.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    journal: dict[str, Any] = json.loads((tmp_path / "journal.json").read_text())
    return journal


def _action(journal: dict[str, Any], name: str) -> dict[str, Any]:
    run = next(r for r in journal["run"] if r["activity"]["name"] == name)
    assert run["status"] == "succeeded", run
    output: dict[str, Any] = run["output"]
    return output


def _replaced(journal: dict[str, Any], action: str, role: str) -> dict[str, Any]:
    """Return the output of the delete `action`: a pod of `role` deleted, a new one recovered."""
    deleted = _action(journal, action)
    assert deleted["deleted"]["role"] == role
    assert deleted["recovery"]["recovered"] is True
    assert deleted["recovery"]["new_pod"] != deleted["deleted"]["name"]  # a new pod, not it
    return deleted


def _traffic(journal: dict[str, Any]) -> dict[str, Any]:
    rollback = next(r for r in journal["rollbacks"] if r["activity"]["name"] == "stop-traffic")
    output: dict[str, Any] = rollback["output"]
    return output


def test_gcs_kill_through_pods_exec_restarts_only_the_head_once(
    node: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """KubeRay's HA test on the real node: `pkill gcs_server` in the head through pods/exec
    (the kubelet API), then the same head pod with restartCount == 1 and every pod Ready.
    First in this module, on the fresh cluster. Main refused the kill on Kubernetes."""
    from kubernetes import client

    _, settings = node
    core = client.CoreV1Api(kubeconfig.api_client(Path(settings["KUBECONFIG"])))
    selector = "ray.io/node-type in (head,worker)"

    def restarts() -> dict[str, int]:
        pods = core.list_namespaced_pod(settings["RAYSVC_NAMESPACE"], label_selector=selector)
        return {
            p.metadata.name: sum(c.restart_count for c in p.status.container_statuses or [])
            for p in pods.items
        }

    before = restarts()
    journal = _run("gcs-kill.json", settings, tmp_path)

    killed = _action(journal, "kill-gcs-server")
    head = killed["killed"]["pod"]
    assert killed["target"] == "kubernetes" and killed["killed"]["process"] == "gcs_server"
    assert killed["recovery"]["recovered"] is True
    assert killed["recovery"]["new_pod"] == head  # the same pod, restarted in place
    after = restarts()
    assert before[head] == 0 and after[head] == 1, (before, after)  # KubeRay's assertion
    assert {n: c for n, c in after.items() if n != head} == {
        n: c for n, c in before.items() if n != head
    }
    pods = core.list_namespaced_pod(settings["RAYSVC_NAMESPACE"], label_selector=selector).items
    assert all(
        any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        for p in pods
    )
    probe = next(
        p for p in journal["steady_states"]["after"]["probes"]
        if p["activity"]["name"] == "no-restart-but-the-head"
    )  # fmt: skip
    assert probe["tolerance_met"] is True
    traffic = _traffic(journal)
    print("gcs-kill on the real node:", killed["recovery"]["seconds_to"], traffic["failures"],
          "failed of", traffic["requests"])  # fmt: skip


def test_head_kill_through_the_kubernetes_target_the_real_operator_recreates_the_head(
    node: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _, settings = node

    journal = _run("head-kill.json", settings, tmp_path)

    assert journal["status"] in ("completed", "failed"), journal["status"]
    deleted = _replaced(journal, "delete-head-pod", "head")  # the real operator's new head
    assert deleted["target"] == "kubernetes"
    recovery = deleted["recovery"]
    assert {"pod_ready", "endpoints_restored", "applications_running"} <= set(
        recovery["seconds_to"]
    )
    traffic = _traffic(journal)
    assert traffic["requests"] > 500
    # One run is no proof of zero: at most 1% failed (docs/findings.md gives the spread).
    assert traffic["failures"] <= traffic["requests"] // 100, traffic
    print("head-kill on the real node:", recovery["seconds_to"], traffic["failures"])


def test_worker_kill_through_the_kubernetes_target_recovers(
    node: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _, settings = node

    journal = _run("worker-kill.json", settings, tmp_path)

    _replaced(journal, "delete-worker-pod", "worker")
    traffic = _traffic(journal)
    assert traffic["failures"] <= traffic["requests"] // 100, traffic


def test_redis_kill_on_the_real_node_loses_the_state_as_the_doctor_predicts(
    node: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _, settings = node

    journal = _run("redis-kill.json", settings, tmp_path)

    # the ReplicaSet's new Redis, a new cluster, Serve back
    recovery = _replaced(journal, "delete-redis-pod", "redis")["recovery"]
    # The sample's Redis has no volume (the doctor's gcs-storage-ephemeral): the GCS state goes
    # with it, the head starts a new cluster and Serve is redeployed, so requests fail.
    traffic = _traffic(journal)
    assert journal["deviated"] is True and traffic["failures"] > 0, traffic
    print("redis-kill on the real node:", recovery["seconds_to"], traffic["failures"], "of",
          traffic["requests"])  # fmt: skip


def test_an_upgrade_under_traffic_moves_everything_to_the_new_cluster(
    node: tuple[Path, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, settings = node

    # KubeRay deletes the old cluster 60 s after the switch: about 3 min in all, idle.
    journal = _run("upgrade.json", settings, tmp_path, 900, RAYSVC_UPGRADE_TIMEOUT="600")

    upgraded = _action(journal, "upgrade-rayservice")
    old, new = upgraded["upgraded"]["from_cluster"], upgraded["upgraded"]["to_cluster"]
    assert new and new != old  # the real operator rolled out a new RayCluster
    recovery = upgraded["recovery"]
    assert recovery["recovered"] is True
    assert {*rollout.MILESTONES, "old_cluster_deleted"} <= set(recovery["seconds_to"])
    # The kubernetes target follows the active cluster: its pods and serve endpoints.
    for key in ("KUBECONFIG", "RAYSVC_TARGET", "RAYSVC_NAME", "RAYSVC_NAMESPACE"):
        monkeypatch.setenv(key, settings[key])
    target = resolve_target({}, None)
    assert target.ray_clusters() == (new, "")
    ray_pods = [p for p in target.pods() if p.role != "redis"]
    assert ray_pods and {p.labels["ray.io/cluster"] for p in ray_pods} == {new}
    names = {p.name for p in ray_pods}
    assert {e.pod_name for e in target.serve_endpoints() if e.ready} <= names
    assert not target.cluster_pods(old)
    traffic = _traffic(journal)
    assert traffic["requests"] > 500
    assert traffic["failures"] <= traffic["requests"] // 100, traffic
    print("upgrade on the real node:", recovery["seconds_to"], traffic["failures"], "failed of",
          traffic["requests"])  # fmt: skip


def _apply_deploy(api: Any) -> None:
    from kubernetes import utils

    for name in ("serviceaccount", "role", "rolebinding", "pvc", "cronjob"):
        for doc in (
            d for d in yaml.safe_load_all((REPO / "deploy" / f"{name}.yaml").read_text()) if d
        ):
            utils.create_from_dict(api, doc, namespace="default")


def test_the_cronjob_runs_head_kill_in_the_cluster_and_leaves_a_report_on_the_pvc(
    node: tuple[Path, dict[str, str]],
) -> None:
    from kubernetes import client

    state_dir, settings = node
    api = kubeconfig.api_client(Path(settings["KUBECONFIG"]))
    _apply_deploy(api)
    batch = client.BatchV1Api(api)
    cron = batch.read_namespaced_cron_job("chaosraysvc-head-kill", "default")
    job = client.V1Job(
        metadata=client.V1ObjectMeta(
            name="head-kill-now",
            annotations={"cronjob.kubernetes.io/instantiate": "manual"},
            owner_references=[client.V1OwnerReference(
                api_version="batch/v1", kind="CronJob", name=cron.metadata.name,
                uid=cron.metadata.uid, controller=True)],
        ),
        spec=cron.spec.job_template.spec,
    )  # fmt: skip
    batch.create_namespaced_job("default", job)

    def finished() -> str:
        status = batch.read_namespaced_job("head-kill-now", "default").status
        for condition in status.conditions or []:
            if condition.type in ("Complete", "Failed") and condition.status == "True":
                return str(condition.type)
        return ""

    outcome = wait_for(finished, 600, interval=2, what="the Job to finish")

    runs = sorted((state_dir / "node" / "pvc" / "default" / "chaosraysvc-artifacts").iterdir())
    assert len(runs) == 1, runs
    journal = json.loads((runs[0] / "journal.json").read_text())
    assert (runs[0] / "journal-traffic.jsonl").stat().st_size > 0
    deleted = _action(journal, "delete-head-pod")
    report = (runs[0] / "report.html").read_text()
    assert journal["experiment"]["title"] in report
    # The target the in-cluster run used, as the report's configuration table shows it.
    assert deleted["target"] == "kubernetes"
    assert ">kubernetes<" in report, journal["experiment"].get("configuration")
    assert deleted["recovery"]["recovered"] is True
    assert outcome == ("Failed" if journal["deviated"] else "Complete")
    print("CronJob run:", outcome, _traffic(journal)["requests"], _traffic(journal)["failures"])
