"""The manifests in deploy/ are valid Kubernetes objects and fit together (offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUBERNETES_VERSION = "1.31.0"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _objects() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in _docs(path):
            found[doc["kind"]] = doc
    return found


MANIFESTS = sorted(p.name for p in DEPLOY.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_validates_against_the_kubernetes_schema(name: str) -> None:
    docs = _docs(DEPLOY / name)
    assert docs, f"{name} holds no object"
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_kustomization_lists_the_manifests_and_names_the_image() -> None:
    [kustomization] = _docs(DEPLOY / "kustomization.yaml")
    resources = kustomization["resources"]

    opt_in = {
        "artifacts-reader.yaml",
        "exec-role.yaml",
        "exec-rolebinding.yaml",
        "networkpolicy-role.yaml",
        "networkpolicy-rolebinding.yaml",
        "node-reader-clusterrole.yaml",
        "drain-clusterrole.yaml",
        "node-loss-clusterrole.yaml",
    }
    assert sorted(resources) == sorted(set(MANIFESTS) - opt_in)
    assert all((DEPLOY / r).is_file() for r in resources)
    [image] = kustomization["images"]
    container = _objects()["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["image"] == image["name"]


def test_the_cronjob_runs_head_kill_one_at_a_time_and_keeps_artifacts() -> None:
    objects = _objects()
    cron = objects["CronJob"]["spec"]
    job = cron["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    [container] = pod["containers"]
    script = "\n".join(container["command"] + container["args"])
    env = {e["name"]: e.get("value") for e in container["env"]}

    assert cron["concurrencyPolicy"] == "Forbid"
    assert job["backoffLimit"] == 0
    assert "chaos --log-file" in script and " run " in script
    assert "/app/experiments/head-kill.json" in script
    assert (REPO / "experiments" / "head-kill.json").is_file()
    assert '--journal-path "$run/journal.json"' in script and 'run="/artifacts/' in script
    assert "chaosraysvc report" in script
    assert env["CHAOSTOOLKIT_IN_POD"] == "true" and env["RAYSVC_TARGET"] == "kubernetes"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["artifacts"] == "/artifacts"
    claim = volumes["artifacts"]["persistentVolumeClaim"]["claimName"]
    assert claim == objects["PersistentVolumeClaim"]["metadata"]["name"]
    assert pod["serviceAccountName"] == objects["ServiceAccount"]["metadata"]["name"]


def test_the_opt_in_exec_role_grants_pods_exec_only_to_the_service_account() -> None:
    [role] = _docs(DEPLOY / "exec-role.yaml")
    [binding] = _docs(DEPLOY / "exec-rolebinding.yaml")
    [account] = _docs(DEPLOY / "serviceaccount.yaml")

    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get", "create"]}
    ]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert [s["name"] for s in binding["subjects"]] == [account["metadata"]["name"]]


def test_the_opt_in_networkpolicy_role_grants_only_networkpolicies_to_the_account() -> None:
    [role] = _docs(DEPLOY / "networkpolicy-role.yaml")
    [binding] = _docs(DEPLOY / "networkpolicy-rolebinding.yaml")
    [account] = _docs(DEPLOY / "serviceaccount.yaml")
    [base] = _docs(DEPLOY / "role.yaml")

    assert role["rules"] == [
        {
            "apiGroups": ["networking.k8s.io"],
            "resources": ["networkpolicies"],
            "verbs": ["create", "delete", "get"],
        }
    ]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert [s["name"] for s in binding["subjects"]] == [account["metadata"]["name"]]
    # chaosraysvc's own Role stays without it: the partition is opt-in
    assert not [r for r in base["rules"] if "networkpolicies" in r["resources"]]


def test_the_opt_in_node_reader_grants_only_node_list_to_the_service_account() -> None:
    role, binding = _docs(DEPLOY / "node-reader-clusterrole.yaml")
    [account] = _docs(DEPLOY / "serviceaccount.yaml")

    assert (role["kind"], binding["kind"]) == ("ClusterRole", "ClusterRoleBinding")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert [s["name"] for s in binding["subjects"]] == [account["metadata"]["name"]]


def test_the_opt_in_drain_role_grants_cordon_and_evictions_but_no_pod_deletion() -> None:
    role, binding = _docs(DEPLOY / "drain-clusterrole.yaml")
    [account] = _docs(DEPLOY / "serviceaccount.yaml")

    assert (role["kind"], binding["kind"]) == ("ClusterRole", "ClusterRoleBinding")
    granted = {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
    assert granted == {
        ("nodes", "get"), ("nodes", "list"), ("nodes", "patch"),
        ("pods", "list"), ("pods/eviction", "create"),
    }  # fmt: skip
    assert all(rule["apiGroups"] == [""] for rule in role["rules"])
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert [s["name"] for s in binding["subjects"]] == [account["metadata"]["name"]]


def test_the_opt_in_node_loss_role_reads_and_deletes_nodes_and_nothing_else() -> None:
    role, binding = _docs(DEPLOY / "node-loss-clusterrole.yaml")
    [account] = _docs(DEPLOY / "serviceaccount.yaml")

    assert (role["kind"], binding["kind"]) == ("ClusterRole", "ClusterRoleBinding")
    granted = {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
    assert granted == {("nodes", "list"), ("nodes", "delete")}
    assert all(rule["apiGroups"] == [""] for rule in role["rules"])
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert [s["name"] for s in binding["subjects"]] == [account["metadata"]["name"]]


def test_the_rolebinding_binds_the_role_to_the_service_account() -> None:
    objects = _objects()
    binding = objects["RoleBinding"]

    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": objects["Role"]["metadata"]["name"],
    }
    [subject] = binding["subjects"]
    assert (subject["kind"], subject["name"]) == (
        "ServiceAccount",
        objects["ServiceAccount"]["metadata"]["name"],
    )


def test_the_image_installs_the_package_and_the_experiments() -> None:
    text = (DEPLOY / "Containerfile").read_text()

    assert "pip install ." in text
    assert "COPY experiments ./experiments" in text
    assert "CHAOSTOOLKIT_IN_POD=true" in text
    assert "USER 10001" in text
