"""`chaos run experiments/drain-head-node.json` on the lab with three nodes that run pods
(`node up --nodes 3`: zones a, b, c, the real kube-scheduler placing the pods).

First a bare pod on the head's node refuses the drain (as kubectl drain refuses without
--force): the run must not read as passed and nothing may have changed. Then a
PodDisruptionBudget that allows no disruption of the head (minAvailable 1; the real
disruption controller, the API server's Eviction API answering 429): the drain waits for it
until its timeout and fails naming the budget, the head stays, the run does not pass and the
node is schedulable again (uncordoned by the action when nothing was evicted, else by the
rollback). Then the real drain: the head's node is cordoned, the head evicted through the
Eviction API, the new head placed on another node by the scheduler, the service recovered,
and the rollback uncordons the node.
Whether a request fails is the finding (docs/findings.md), not the test's: the verdict must
agree with the traffic log. Needs root and the machine's node lock (marked `node`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from chaosraysvc.kube.drain import CORDONED_BY
from chaosraysvc_lab.stack import KubeNode
from tests.support.polling import wait_for

from .conftest import chaos_run, core_api, own_node, requires_namespaces, running_head
from .query_loop import probe_outputs

pytestmark = [pytest.mark.node, requires_namespaces]


@pytest.fixture(scope="module")
def node() -> Iterator[tuple[KubeNode, dict[str, str]]]:
    with own_node("crs-drain-", nodes=3) as started:
        yield started


def _bare_pod(core: client.CoreV1Api, node: str) -> None:
    spec = {"nodeName": node, "containers": [{"name": "c", "image": "busybox",
                                              "command": ["sleep", "3600"]}]}  # fmt: skip
    core.create_namespaced_pod("default", {"metadata": {"name": "bystander"}, "spec": spec})
    wait_for(lambda: core.read_namespaced_pod("bystander", "default").status.phase == "Running",
             60, what="the bystander pod to run")  # fmt: skip


def _delete_bare_pods(core: client.CoreV1Api, node: str) -> None:
    """Delete the bare pods on `node` (the bystander; the sample's ray-pod, if it landed
    there), so the drain is not refused."""
    bare = [p for p in core.list_namespaced_pod("default").items
            if p.spec.node_name == node and not p.metadata.owner_references]  # fmt: skip
    for pod in bare:
        core.delete_namespaced_pod(pod.metadata.name, "default", grace_period_seconds=0)
    wait_for(lambda: not {p.metadata.name for p in bare} & {
        p.metadata.name for p in core.list_namespaced_pod("default").items
    }, 60, what="the bare pods to go")  # fmt: skip


def test_a_bare_pod_on_the_heads_node_refuses_the_drain_and_the_run_does_not_pass(
    node: tuple[KubeNode, dict[str, str]], tmp_path: Path
) -> None:
    _, settings = node
    core = core_api(settings)
    head = running_head(core)
    nodes = {n.metadata.name: n for n in core.list_node().items}
    zones = {n.metadata.labels.get("topology.kubernetes.io/zone") for n in nodes.values()}
    assert len(nodes) == 4 and zones == {"zone-a", "zone-b", "zone-c"}, nodes
    assert nodes["chaosraysvc-node"].spec.taints[0].effect == "NoSchedule"
    _bare_pod(core, head.spec.node_name)

    journal, verdict = chaos_run("drain-head-node", settings, tmp_path)

    drained = next(r for r in journal["run"] if r["activity"]["name"] == "drain-head-node")
    assert drained["status"] == "failed", drained
    said = drained["exception"][-1]  # the sample's bare ray-pod may be named there too
    assert "default/bystander" in said and "has no controller" in said, said
    assert verdict["outcome"] != "passed", verdict
    assert journal["status"] != "completed" or journal["deviated"], journal["status"]
    assert running_head(core).metadata.uid == head.metadata.uid  # nothing evicted
    after = core.read_node(head.spec.node_name)
    assert not after.spec.unschedulable and CORDONED_BY not in (after.metadata.annotations or {})
    _delete_bare_pods(core, head.spec.node_name)


def test_a_budget_that_allows_no_disruption_of_the_head_holds_the_drain_and_the_run_fails(
    node: tuple[KubeNode, dict[str, str]], tmp_path: Path
) -> None:
    _, settings = node
    core = core_api(settings)
    head = running_head(core)
    _delete_bare_pods(core, head.spec.node_name)
    policy = client.PolicyV1Api(core.api_client)
    budget = {"metadata": {"name": "head-budget"},
              "spec": {"minAvailable": 1, "selector": {"matchLabels": {
                  "ray.io/node-type": "head"}}}}  # fmt: skip
    # minAvailable as a count: the disruption controller needs no scale subresource (a
    # RayCluster has none), one head healthy of one, so no disruption allowed
    policy.create_namespaced_pod_disruption_budget("default", budget)
    try:
        wait_for(lambda: (policy.read_namespaced_pod_disruption_budget(
            "head-budget", "default").status.observed_generation or 0) >= 1,
            60, what="the disruption controller to compute the budget")  # fmt: skip
        computed = policy.read_namespaced_pod_disruption_budget("head-budget", "default")
        assert (computed.status.current_healthy, computed.status.disruptions_allowed) == (1, 0)
        journal, verdict = chaos_run("drain-head-node", settings, tmp_path,
                                     RAYSVC_DRAIN_TIMEOUT="20")  # fmt: skip
    finally:
        policy.delete_namespaced_pod_disruption_budget("head-budget", "default")

    drained = next(r for r in journal["run"] if r["activity"]["name"] == "drain-head-node")
    assert drained["status"] == "failed", drained
    said = drained["exception"][-1]
    assert f"default/{head.metadata.name}" in said and "disruption budget" in said, said
    assert verdict["outcome"] != "passed", verdict
    assert running_head(core).metadata.uid == head.metadata.uid  # the budget held it
    # nothing evicted (the head alone there): the action uncordoned the node itself; a worker
    # evicted beside the head: the rollback did
    undone = next(r for r in journal["rollbacks"] if r["activity"]["name"] == "uncordon-node")
    assert undone["output"]["uncordoned"] in ([], [head.spec.node_name]), undone
    assert not core.read_node(head.spec.node_name).spec.unschedulable
    wait_for(lambda: all(  # a worker evicted beside the head comes back before the next test
        any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        for p in core.list_namespaced_pod("default", label_selector="ray.io/node-type").items
    ), 240, what="every Ray pod Ready again")  # fmt: skip


def test_draining_the_heads_node_moves_the_head_and_the_rollback_uncordons(
    node: tuple[KubeNode, dict[str, str]], tmp_path: Path
) -> None:
    _, settings = node
    core = core_api(settings)
    head = running_head(core)
    _delete_bare_pods(core, head.spec.node_name)

    journal, verdict = chaos_run("drain-head-node", settings, tmp_path)

    drained = next(r for r in journal["run"] if r["activity"]["name"] == "drain-head-node")
    assert drained["status"] == "succeeded", drained.get("exception")
    output = drained["output"]
    key = f"default/{head.metadata.name}"
    assert output["drained"]["node"] == head.spec.node_name
    assert output["drain"]["cordoned"] is True
    assert key in output["drain"]["evicted"] and key in output["drain"]["gone"], output["drain"]
    assert output["recovery"]["recovered"] is True, output["recovery"]
    new_head = running_head(core)
    assert new_head.metadata.name == output["recovery"]["new_pod"]
    assert new_head.spec.node_name != head.spec.node_name  # the cordon held it off
    undone = next(r for r in journal["rollbacks"] if r["activity"]["name"] == "uncordon-node")
    assert undone["output"] == {"uncordoned": [head.spec.node_name]}
    assert not core.read_node(head.spec.node_name).spec.unschedulable
    failures = probe_outputs(journal, "after", "zero-failed-requests")
    print(f"drained {head.spec.node_name} (the head {head.metadata.name}); new head on "
          f"{new_head.spec.node_name}; recovery {output['recovery']['seconds_to']}; "
          f"failed requests {failures}; evicted {sorted(output['drain']['evicted'])}")  # fmt: skip
    assert failures and isinstance(failures[0], int), failures
    assert verdict["outcome"] == ("passed" if failures[0] == 0 else "deviated"), verdict
