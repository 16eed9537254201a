"""Drain the Kubernetes node that holds a RayService pod, and uncordon it again.

::

    {"type": "action", "name": "drain-head-node",
     "provider": {"type": "python", "module": "chaosraysvc.activities.node_actions",
                  "func": "drain_node", "arguments": {"role": "head", "timeout": 120}}}
    ...
    "rollbacks": [{"type": "action", "name": "uncordon-node",
                   "provider": {"type": "python",
                                "module": "chaosraysvc.activities.node_actions",
                                "func": "uncordon_node"}}]

`drain_node` does what `kubectl drain --ignore-daemonsets` does to the node of the RayService's
head (or a worker, or the GCS's Redis): cordon, then the Eviction API for every pod on it,
PodDisruptionBudgets honoured, then waits until the pods are gone; then it waits for the
RayService's recovery as the delete actions do. It needs the opt-in
`deploy/drain-clusterrole.yaml` (nodes are cluster-scoped; a drain evicts pods of every
namespace on the node). The sandbox refuses it: it has no nodes.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaosraysvc import recovery
from chaosraysvc.activities.common import activity_errors, limits, target_for
from chaosraysvc.activities.pod_actions import setup_facts
from chaosraysvc.config import number
from chaosraysvc.errors import (
    ConfigurationError,
    FaultNotEffectiveError,
    NotFoundError,
    RefusedError,
)
from chaosraysvc.kube import drain
from chaosraysvc.model import Pod
from chaosraysvc.targets.base import Target, pods_of_role
from chaosraysvc.traffic.registry import mark

__all__ = ["drain_node", "uncordon_node"]
logger = logging.getLogger("chaostoolkit")
ROLES = ("head", "worker", "redis")


def _pod_of(target: Target, role: str) -> Pod:
    """A running pod of `role` bound to a node (a random one among workers)."""
    pods = [p for p in pods_of_role(target, role) if p.phase == "Running"]  # type: ignore[arg-type]
    if not pods:
        raise NotFoundError(f"no running {role} pod whose node to drain: is the RayService up?")
    pod = random.choice(pods) if role == "worker" else pods[0]
    if not pod.node:
        raise NotFoundError(f"{role} pod {pod.name} is bound to no node: nothing to drain")
    return pod


def pod_namespace(target: Target) -> str:
    """The namespace of the RayService's pods (the kubernetes target's)."""
    return str(getattr(target, "namespace", "") or "")


def _refuse_last_node(target: Target, node: str) -> None:
    """Refuse when no other node could take the evicted pods (Ready, schedulable, with no
    NoSchedule or NoExecute taint: a kubeadm control plane takes no workload)."""
    others = [
        n for n in target.nodes()
        if n.name != node and n.ready == "True" and n.schedulable and not n.tainted
    ]  # fmt: skip
    if not others:
        raise RefusedError(
            f"refusing to drain node {node!r}: no other node is Ready and schedulable, so the "
            "evicted pods could run nowhere and the service would stay down until the "
            "rollback uncordons it. Pass allow_last_node=true to do it anyway"
        )


def drain_node(
    role: str = "head",
    timeout: float = 120,
    grace_period: int = -1,
    wait_for_recovery: bool = True,
    recovery_timeout: float = 300,
    allow_last_node: bool = False,
    force: bool = False,
    dry_run: bool = False,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Drain the node of the RayService's `role` pod (head, worker or redis) and wait for recovery.

    Cordons the node, evicts every pod on it but DaemonSet and static pods through the
    Eviction API (a PodDisruptionBudget that forbids an eviction is asked again every 5 s),
    and waits up to `timeout` seconds until they are gone; `grace_period` seconds for each
    (-1: the pod's own). With `wait_for_recovery`, then waits up to `recovery_timeout` for a
    new pod of that role ready, the endpoints restored and the applications RUNNING. Refuses
    when no other node is Ready and schedulable, unless `allow_last_node`. `dry_run` has the
    API server validate the cordon and the evictions only. A pod on the node that no
    controller owns (a bare pod) refuses the drain, as kubectl drain does, unless `force`.
    The node stays cordoned: the rollback `uncordon_node` undoes it. Needs
    deploy/drain-clusterrole.yaml.
    """
    with activity_errors():
        if role not in ROLES:
            raise ConfigurationError(
                f"drain_node: role must be one of {', '.join(ROLES)} (got {role!r})"
            )
        grace = int(number(grace_period, "drain_node `grace_period`", integer=True))
        if grace < -1:
            raise ConfigurationError(
                f"drain_node: grace_period must be -1 (the pod's own) or >= 0 (got {grace})"
            )
        _, timeout = limits("drain_node", 0, timeout)
        _, recovery_timeout = limits("drain_node (recovery_timeout)", 0, recovery_timeout)
    target = target_for(configuration, secrets)
    with activity_errors():
        pod = _pod_of(target, role)
        if not allow_last_node:
            _refuse_last_node(target, pod.node)
        grace_or_own = None if grace < 0 else grace
        if dry_run:
            planned = target.drain_node(pod.node, timeout, grace_or_own, force, dry_run=True)
            return {"target": target.kind, "role": role, "pod": pod.name, **planned}
        baseline = recovery.Baseline.capture(target)
        facts = setup_facts(target)
        logger.info("Draining node %s (%s pod %s there)", pod.node, role, pod.name)
        mark("fault", pod=pod.name, role=role, action="drain_node", node=pod.node, **facts)
        started = time.time()
        key = f"{pod_namespace(target)}/{pod.name}"
        try:
            drained = target.drain_node(pod.node, timeout, grace_or_own, force)
        except Exception as exc:
            if key not in drain.partial(exc).get("evicted", {}):  # its pod never evicted
                mark("fault_not_injected", pod=pod.name, error=type(exc).__name__)
            raise  # evicted, then failed (a budget, a pod that did not end): the fault stands
        if key not in drained.get("evicted", {}) or key not in drained.get("gone", {}):
            mark("fault_not_injected", pod=pod.name, error="FaultNotEffectiveError")
            raise FaultNotEffectiveError(
                f"node {pod.node} was drained but the {role} pod {pod.name} was not evicted by "
                f"it (skipped: {drained.get('skipped', {}).get(key, 'no')}; gone before its "
                f"eviction: {key in drained.get('vanished', [])}): the fault did not happen"
            )
        result: dict[str, Any] = {
            "target": target.kind,
            "drained": {"name": pod.name, "role": role, "uid": pod.uid, "node": pod.node},
            "drain": drained,
            "grace_period": grace_or_own,
            "drained_at": started,
            "drain_seconds": round(time.time() - started, 2),
            "recovery": None,
        }
        if wait_for_recovery:
            rec = recovery.wait_for_milestones(
                target, pod, started, baseline, recovery_timeout, mark=mark
            )
            result["recovery"] = rec.to_json()
        return result


def uncordon_node(
    configuration: Configuration | None = None, secrets: Secrets | None = None
) -> dict[str, Any]:
    """Make schedulable again every node drain_node cordoned for this RayService.

    Meant for rollbacks: a node that was cordoned before the run is left as it was. Returns
    the names of the nodes uncordoned (none on the sandbox).
    """
    target = target_for(configuration, secrets)
    with activity_errors():
        return {"uncordoned": target.uncordon_nodes()}
