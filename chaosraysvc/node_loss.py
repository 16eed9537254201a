"""Follow what Kubernetes does after nodes are lost, milestone by milestone.

Milestones, as seconds after the loss (epoch seconds in `Recovery.milestones`), the node's
own first (`NODE_LOSS_MILESTONES`):
- `node_not_ready`: every lost node's Ready condition is no longer True (the node-lifecycle
  controller saw its Lease expire), or its Node is gone;
- `endpoints_dropped`: no ready endpoint of the serve Service is a pod that was on a lost
  node (the EndpointSlice controller dropped them once the pods were marked not ready);
  only when some were there before;
- `pods_evicted`: every RayService pod that was on a lost node is terminating or gone (the
  taint-eviction controller deletes them once their `unreachable` toleration ends: 300 s
  by default);
- `node_deleted`: when `delete_after` >= 0, the lost Nodes are deleted once NotReady and at
  least that many seconds after the loss, as a cloud's node controller deletes the Node of
  an instance that is gone (the pod garbage collector then removes its pods);
then, as after any fault (`chaosraysvc.recovery`): `pod_ready` (a new pod of the lost pod's
role ready), `endpoints_restored`, `applications_running` (both counted once it is).
A milestone not reached within the time given is missing from the result, not an error:
a RayService that never comes back is what the experiment is for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chaosraysvc import recovery
from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc.model import Pod
from chaosraysvc.targets.base import Target, ready_endpoint_count

__all__ = ["NODE_LOSS_MILESTONES", "Loss", "expected_milestones", "follow_node_loss", "lost_pods"]
logger = logging.getLogger("chaostoolkit")
NODE_LOSS_MILESTONES = ("node_not_ready", "endpoints_dropped", "pods_evicted", "node_deleted")
POLL_S = 1.0


@dataclass(frozen=True)
class Loss:
    """What was lost: the nodes, the pod whose node was chosen, the RayService's pods on
    the nodes and those of them behind the serve Service (ready endpoints) before."""

    nodes: tuple[str, ...]
    pod: Pod
    pods: tuple[str, ...]
    endpoints: tuple[str, ...]
    at: float


def expected_milestones(loss: Loss, delete_after: float) -> list[str]:
    """The milestones a loss should reach (`endpoints_dropped` only if endpoints were there,
    `node_deleted` only when the Nodes are deleted)."""
    expected = ["node_not_ready", "pods_evicted", *recovery.MILESTONES]
    if loss.endpoints:
        expected.append("endpoints_dropped")
    if delete_after >= 0:
        expected.append("node_deleted")
    return expected


def follow_node_loss(
    target: Target,
    loss: Loss,
    baseline: recovery.Baseline,
    timeout: float,
    not_ready_timeout: float,
    delete_after: float = -1,
    mark: Callable[..., object] | None = None,
) -> recovery.Recovery:
    """Poll until every milestone is reached or `timeout` seconds pass, or until
    `not_ready_timeout` seconds pass with a lost node still Ready (the loss did not
    happen: the caller says so); return the milestones reached."""
    found = recovery.Recovery(fault_at=loss.at)
    started = time.monotonic()
    expected = expected_milestones(loss, delete_after)

    def reach(name: str, **detail: object) -> None:
        if name not in found.milestones:
            found.milestones[name] = time.time()
            logger.info("Node loss: %s after %.1f s", name, found.milestones[name] - loss.at)
            if mark is not None:
                mark(name, **detail)

    while time.monotonic() - started < timeout:
        try:
            _poll(target, loss, baseline, delete_after, found, reach)
        except ChaosRaySvcError as exc:  # a read while the cluster settles: try again
            if getattr(exc, "status", None) in (401, 403):  # never settles: say so now
                raise
            logger.debug("Node loss: read failed, trying again: %s", exc)
        if all(m in found.milestones for m in expected):
            break
        if "node_not_ready" not in found.milestones and (
            time.monotonic() - started > not_ready_timeout
        ):
            break
        time.sleep(POLL_S)
    return found


def _poll(
    target: Target,
    loss: Loss,
    baseline: recovery.Baseline,
    delete_after: float,
    found: recovery.Recovery,
    reach: Callable[..., None],
) -> None:
    milestones = found.milestones
    if "node_not_ready" not in milestones:
        nodes = {n.name: n for n in target.nodes()}
        if all(name not in nodes or nodes[name].ready != "True" for name in loss.nodes):
            reach("node_not_ready", nodes=list(loss.nodes))
    pods = target.pods()
    if loss.endpoints and "endpoints_dropped" not in milestones:
        still = [e.pod_name for e in target.serve_endpoints()
                 if e.ready and e.pod_name in loss.endpoints]  # fmt: skip
        if not still:
            reach("endpoints_dropped", pods=list(loss.endpoints))
    if "pods_evicted" not in milestones:
        left = [p for p in pods if p.name in loss.pods and p.phase != "Terminating"]
        if not left:
            reach("pods_evicted", pods=list(loss.pods))
    due = delete_after >= 0 and time.time() >= loss.at + delete_after
    if due and "node_not_ready" in milestones and "node_deleted" not in milestones:
        for name in loss.nodes:
            target.delete_node(name)
        reach("node_deleted", nodes=list(loss.nodes))
    if "pod_ready" not in milestones:
        new = recovery.replacement(target, loss.pod, baseline.pods, pods)
        if new is not None:
            found.new_pod = new.name
            reach("pod_ready", pod=new.name, role=new.role)
    if "pod_ready" in milestones:
        if ready_endpoint_count(target) >= baseline.endpoints:
            reach("endpoints_restored", endpoints=baseline.endpoints)
        if recovery.apps_running(target, baseline.applications):
            reach("applications_running")


def lost_pods(pods: Sequence[Pod], nodes: Sequence[str]) -> tuple[str, ...]:
    """The names of `pods` bound to one of `nodes`."""
    return tuple(sorted(p.name for p in pods if p.node in nodes))
