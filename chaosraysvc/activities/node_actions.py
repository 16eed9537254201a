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

from chaosraysvc import node_loss, recovery
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

__all__ = ["drain_node", "lose_node", "restore_node", "uncordon_node"]
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


def _refuse_last_node(target: Target, nodes: list[str], refused: str, undone: str) -> None:
    """Refuse (`refused`: "to drain node 'x'") when no node but `nodes` could take their pods
    (Ready, schedulable, with no NoSchedule or NoExecute taint: a kubeadm control plane takes
    no workload); `undone` says what the rollback does."""
    others = [
        n for n in target.nodes()
        if n.name not in nodes and n.ready == "True" and n.schedulable and not n.tainted
    ]  # fmt: skip
    if not others:
        raise RefusedError(
            f"refusing {refused}: no other node is Ready and schedulable, so their pods could "
            f"run nowhere else and the service would stay down until the rollback {undone}. "
            "Pass allow_last_node=true to do it anyway"
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
    The node stays cordoned (but for a drain that failed before evicting anything, which
    uncordons it at once): the rollback `uncordon_node` undoes it. Needs
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
            _refuse_last_node(target, [pod.node], f"to drain node {pod.node!r}", "uncordons it")
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


# The nodes each RayService's lose_node lost in this process, for its rollback restore_node
# (Chaos Toolkit runs an experiment's method and rollbacks in one process).
_LOST: dict[str, list[str]] = {}


def _nodes_to_lose(target: Target, pod: Pod, zone: bool) -> list[str]:
    """The node of `pod`, or with `zone` every node of its zone but control-plane nodes."""
    if not zone:
        return [pod.node]
    nodes = {n.name: n for n in target.nodes()}
    where = nodes[pod.node].zone if pod.node in nodes else ""
    if not where:
        raise RefusedError(
            f"refusing to lose the zone of node {pod.node!r}: it has no "
            "topology.kubernetes.io/zone label, so its zone is unknown; lose the node "
            "alone (zone=false)"
        )
    return sorted(n.name for n in nodes.values() if n.zone == where and not n.control_plane)


def lose_node(
    role: str = "head",
    zone: bool = False,
    not_ready_timeout: float = 180,
    delete_node_after: float = -1,
    recovery_timeout: float = 600,
    command_timeout: float = 120,
    allow_last_node: bool = False,
    dry_run: bool = False,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Lose the node of the RayService's `role` pod (head, worker or redis), or its zone.

    The node is lost as a machine is lost (with `zone`, every node of its zone), then what
    Kubernetes does is followed.

    Runs the configured `node_loss_command` with the nodes' names (on the lab's nodes: their
    kubelet and containers killed, their network silent); then records when the nodes go
    NotReady (`node_not_ready`: the node-lifecycle controller; the loss did not happen if it
    does not within `not_ready_timeout`), when the serve Service drops the endpoints that
    were there (`endpoints_dropped`), when their pods are evicted (`pods_evicted`: after the
    pods' `unreachable` toleration, 300 s by default), and when a new pod of `role` is ready
    and the endpoints and applications are back, up to `recovery_timeout` seconds; missing
    milestones are listed, not raised. With `delete_node_after` >= 0 the lost Nodes are
    deleted that many seconds after the loss once NotReady, as a cloud's node controller does
    when the instance is gone (-1: never, as on bare metal: a pod of a lost node then stays
    Terminating). Refuses when no other node is Ready and schedulable unless
    `allow_last_node`; a zone's control-plane nodes are kept. The rollback `restore_node`
    brings the nodes back. Needs deploy/node-loss-clusterrole.yaml.
    """
    with activity_errors():
        if role not in ROLES:
            raise ConfigurationError(
                f"lose_node: role must be one of {', '.join(ROLES)} (got {role!r})"
            )
        not_ready_timeout = _positive("lose_node", "not_ready_timeout", not_ready_timeout)
        recovery_timeout = _positive("lose_node", "recovery_timeout", recovery_timeout)
        command_timeout = _positive("lose_node", "command_timeout", command_timeout)
        delete_after = number(delete_node_after, "lose_node `delete_node_after`")
        if delete_after < 0 and delete_after != -1:
            raise ConfigurationError(
                f"lose_node: delete_node_after must be -1 (never) or >= 0 (got {delete_after:g})"
            )
    target = target_for(configuration, secrets)
    with activity_errors():
        pod = _pod_of(target, role)
        lost = _nodes_to_lose(target, pod, bool(zone))
        if not allow_last_node:
            _refuse_last_node(target, lost, f"to lose {', '.join(lost)}", "restores them")
        pods = target.pods()
        on_lost = node_loss.lost_pods(pods, lost)
        if dry_run:
            return {"target": target.kind, "role": role, "pod": pod.name, "dry_run": True,
                    "would_lose": lost, "pods_there": list(on_lost)}  # fmt: skip
        baseline = recovery.Baseline.capture(target)
        endpoints = tuple(sorted(e.pod_name for e in target.serve_endpoints()
                                 if e.ready and e.pod_name in on_lost))  # fmt: skip
        facts = setup_facts(target)
        logger.info("Losing node(s) %s (%s pod %s there)", ", ".join(lost), role, pod.name)
        mark("fault", pod=pod.name, role=role, action="lose_node", nodes=lost, **facts)
        lost_at = time.time()
        try:
            output = target.lose_nodes(lost, timeout=command_timeout)
        except Exception as exc:
            mark("fault_not_injected", pod=pod.name, error=type(exc).__name__)
            raise
        _LOST.setdefault(_owner(target), [])
        _LOST[_owner(target)] += [n for n in lost if n not in _LOST[_owner(target)]]
        loss = node_loss.Loss(tuple(lost), pod, on_lost, endpoints, lost_at)
        found = node_loss.follow_node_loss(
            target, loss, baseline, recovery_timeout, not_ready_timeout, delete_after, mark
        )
        if "node_not_ready" not in found.milestones:
            mark("fault_not_injected", pod=pod.name, error="FaultNotEffectiveError")
            one = len(lost) == 1
            raise FaultNotEffectiveError(
                f"the node loss command ran for {', '.join(lost)} but "
                f"{'it' if one else 'they'} stayed Ready for {not_ready_timeout:g} s: "
                f"{'its kubelet still reports' if one else 'their kubelets still report'}, so "
                f"no node was lost (the command printed: {output[-300:] or 'nothing'})"
            )
        expected = node_loss.expected_milestones(loss, delete_after)
        missing = [m for m in expected if m not in found.milestones]
        if missing:
            logger.warning("Node loss: not reached within %g s: %s", recovery_timeout,
                           ", ".join(missing))  # fmt: skip
        return {
            "target": target.kind,
            "lost": {"name": pod.name, "role": role, "uid": pod.uid, "node": pod.node,
                     "nodes": lost, "pods": list(on_lost), "endpoints": list(endpoints)},
            "lost_at": lost_at,
            "zone": bool(zone),
            "delete_node_after": delete_after,
            "command_output": output,
            "missing": missing,
            "recovery": found.to_json(),
        }  # fmt: skip


def _positive(action: str, name: str, value: Any) -> float:
    seconds = number(value, f"{action} `{name}`")
    if seconds <= 0:
        raise ConfigurationError(f"{action}: {name} must be > 0 seconds (got {value!r})")
    return seconds


def _owner(target: Target) -> str:
    return f"{pod_namespace(target)}/{getattr(target, 'name', '')}"


def restore_node(
    nodes: list[str] | None = None,
    timeout: float = 120,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Bring back the nodes lose_node lost in this run, or `nodes` when given.

    Runs the configured `node_restore_command` with their names. Meant for rollbacks;
    returns the names restored ([] when none was lost).
    """
    with activity_errors():
        timeout = _positive("restore_node", "timeout", timeout)
    target = target_for(configuration, secrets)
    with activity_errors():
        chosen = list(nodes) if nodes else list(_LOST.get(_owner(target), []))
        if not chosen:
            return {"restored": []}
        output = target.restore_nodes(chosen, timeout=timeout)
        left = [n for n in _LOST.get(_owner(target), []) if n not in chosen]
        _LOST[_owner(target)] = left
        return {"restored": chosen, "command_output": output}
