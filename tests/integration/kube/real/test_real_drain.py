"""drain_node's API calls against the real API server: its RBAC authorizer (the opt-in
deploy/drain-clusterrole.yaml), the Eviction API with a real PodDisruptionBudget (the
disruption controller computes it), the cordon and the rollback's uncordon.

A Node of the test's own (no kubelet: the evictions ask for grace 0, which the API server
carries out at once, as it does for a force deletion) holds three running pods of the test's
namespace: one owned by a controller (a ConfigMap stands for it: nothing adopts or releases
it), one guarded by a budget that allows no disruption, and, in one test, a bare pod. A real
drain of the lab's nodes, through `chaos run`, is in test_real_node_drain.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client

from chaosraysvc.errors import KubernetesApiError, RefusedError
from chaosraysvc.kube.drain import CORDONED_BY
from chaosraysvc_lab.node import node_body
from tests.support.polling import wait_for

from .conftest import DEPLOY, RealCluster

pytestmark = pytest.mark.apiserver
_count = itertools.count(1)


def _running_pod(cluster: RealCluster, node: str, name: str, owner: dict[str, Any] | None,
                 labels: dict[str, str]) -> None:  # fmt: skip
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if owner:
        meta["ownerReferences"] = [owner]
    spec = {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
    core = cluster.plane.core
    core.create_namespaced_pod(cluster.namespace, body)
    status = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    core.patch_namespaced_pod_status(name, cluster.namespace, {"status": status})


@pytest.fixture
def node(as_account: RealCluster) -> Iterator[str]:
    """A Node of this test with two running pods, one guarded by a budget of 0 disruptions."""
    name = f"crs-drain-{next(_count)}"
    core, ns = as_account.plane.core, as_account.namespace
    core.create_node(node_body(name, "198.18.0.3"))
    keeper = core.create_namespaced_config_map(ns, {"metadata": {"name": "keeper"}})
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "keeper",
             "uid": keeper.metadata.uid, "controller": True}  # fmt: skip
    _running_pod(as_account, name, "kept", owner, {"app": "kept"})
    _running_pod(as_account, name, "guarded", owner, {"app": "guarded"})
    # minAvailable as a number: maxUnavailable needs the pods' controller's scale (a Deployment...)
    selector = {"matchLabels": {"app": "guarded"}}
    budget = {"metadata": {"name": "guard"}, "spec": {"minAvailable": 1, "selector": selector}}
    policy = client.PolicyV1Api(as_account.plane.api)
    policy.create_namespaced_pod_disruption_budget(ns, budget)
    wait_for(
        lambda: (policy.read_namespaced_pod_disruption_budget("guard", ns).status.current_healthy
                 or 0) == 1,
        30, what="the disruption controller to count the guarded pod",
    )  # fmt: skip
    try:
        yield name
    finally:
        core.delete_node(name)


@pytest.fixture
def drain_role(as_account: RealCluster) -> Iterator[None]:
    rbac = client.RbacAuthorizationV1Api(as_account.plane.api)
    docs = yaml.safe_load_all((DEPLOY / "drain-clusterrole.yaml").read_text())
    role, binding = [d for d in docs if d]
    binding["subjects"][0]["namespace"] = as_account.namespace
    rbac.create_cluster_role(role)
    rbac.create_cluster_role_binding(binding)
    try:
        yield
    finally:
        rbac.delete_cluster_role_binding(binding["metadata"]["name"])
        rbac.delete_cluster_role(role["metadata"]["name"])


def _pods(cluster: RealCluster) -> set[str]:
    return {p.metadata.name for p in cluster.plane.core.list_namespaced_pod(cluster.namespace).items
            if p.spec.node_name and p.spec.node_name.startswith("crs-drain-")}  # fmt: skip


def _cordon(cluster: RealCluster, node: str) -> tuple[bool, str | None]:
    found = cluster.plane.core.read_node(node)
    return bool(found.spec.unschedulable), (found.metadata.annotations or {}).get(CORDONED_BY)


def test_without_the_opt_in_role_a_drain_is_forbidden_and_changes_nothing(
    as_account: RealCluster, node: str
) -> None:
    with pytest.raises(KubernetesApiError) as refused:
        as_account.target().drain_node(node, 10, 0)

    assert refused.value.status == 403
    assert "deploy/drain-clusterrole.yaml" in str(refused.value)
    assert _cordon(as_account, node) == (False, None)
    assert _pods(as_account) == {"kept", "guarded"}


def test_a_budget_holds_its_pod_until_it_allows_and_the_rollback_uncordons(
    as_account: RealCluster, node: str, drain_role: None
) -> None:
    target = as_account.target()
    owner = f"{as_account.namespace}/{target.name}"

    planned = target.drain_node(node, 10, 0, dry_run=True)
    assert planned["would_evict"] == [f"{as_account.namespace}/kept"]
    assert "disruption budget" in planned["blocked"][f"{as_account.namespace}/guarded"]
    assert _cordon(as_account, node) == (False, None)  # validated, not stored
    assert _pods(as_account) == {"kept", "guarded"}

    with pytest.raises(RefusedError, match=r"guarded: .*disruption budget"):
        target.drain_node(node, 12, 0)
    assert _cordon(as_account, node) == (True, owner)
    assert _pods(as_account) == {"guarded"}  # the other one evicted, this one held

    client.PolicyV1Api(as_account.plane.api).delete_namespaced_pod_disruption_budget(
        "guard", as_account.namespace
    )
    drained = target.drain_node(node, 20, 0)
    assert drained["cordoned"] is False  # cordoned already (by the first drain)
    assert list(drained["evicted"]) == list(drained["gone"]) == [f"{as_account.namespace}/guarded"]
    assert _pods(as_account) == set()

    assert target.uncordon_nodes() == [node]
    assert _cordon(as_account, node) == (False, None)
    assert target.uncordon_nodes() == []


def test_a_bare_pod_refuses_the_drain_unless_forced(
    as_account: RealCluster, node: str, drain_role: None
) -> None:
    client.PolicyV1Api(as_account.plane.api).delete_namespaced_pod_disruption_budget(
        "guard", as_account.namespace
    )
    _running_pod(as_account, node, "bare", None, {"app": "bare"})
    target = as_account.target()

    with pytest.raises(RefusedError, match=r"/bare has no controller"):
        target.drain_node(node, 10, 0)
    assert _cordon(as_account, node) == (False, None)  # refused before the cordon
    assert _pods(as_account) == {"kept", "guarded", "bare"}

    drained = target.drain_node(node, 20, 0, force=True)
    assert len(drained["gone"]) == 3 and _pods(as_account) == set()
    target.uncordon_nodes()
