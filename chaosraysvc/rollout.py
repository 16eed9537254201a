"""Wait for a RayService upgrade to roll out, recording when each milestone is reached.

A change to a RayService's `rayClusterConfig` makes KubeRay prepare a new RayCluster (the
*pending* one), wait for its Serve applications, switch the serve Service to it and, after
`rayClusterDeletionDelaySeconds` (60 s by default), delete the old cluster. Milestones, as
seconds after the patch:
- `new_cluster_created`: KubeRay names a pending cluster (or already switched to a new one);
- `pod_ready`: every pod of the new cluster is ready (at least as many as the old one had);
- `switched`: the RayService's active cluster is the new one;
- `endpoints_restored`: at least as many serve endpoints are ready as before, none of them
  a pod of the old cluster;
- `applications_running`: every application seen before is RUNNING;
- `old_cluster_deleted` (when waited for): no pod of the old cluster is left.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chaosraysvc.errors import RecoveryTimeoutError
from chaosraysvc.recovery import POLL_S, Baseline, apps_running
from chaosraysvc.targets.base import Target

__all__ = ["MILESTONES", "Rollout", "wait_for_rollout"]
logger = logging.getLogger("chaostoolkit")
MILESTONES = (
    "new_cluster_created",
    "pod_ready",
    "switched",
    "endpoints_restored",
    "applications_running",
)
OLD_CLUSTER_DELETED = "old_cluster_deleted"
Marker = Callable[..., object]


@dataclass
class Rollout:
    """Milestones reached after a patch (epoch seconds) and the cluster rolled out."""

    patched_at: float
    old_cluster: str
    new_cluster: str = ""
    expected: tuple[str, ...] = MILESTONES
    milestones: dict[str, float] = field(default_factory=dict)

    def missing(self) -> list[str]:
        return [m for m in self.expected if m not in self.milestones]

    def to_json(self) -> dict[str, Any]:
        return {
            "old_cluster": self.old_cluster,
            "new_cluster": self.new_cluster,
            "recovered": not self.missing(),
            "seconds_to": {k: round(v - self.patched_at, 3) for k, v in self.milestones.items()},
            "at": dict(self.milestones),
        }


def _new_cluster(target: Target, old: str) -> tuple[str, str]:
    """Return (the new cluster's name or "", the active cluster's name)."""
    active, pending = target.ray_clusters()
    return (pending or (active if active and active != old else "")), active


def wait_for_rollout(
    target: Target,
    old_cluster: str,
    patched_at: float,
    baseline: Baseline,
    timeout: float,
    wait_for_old_cluster: bool = True,
    mark: Marker | None = None,
) -> Rollout:
    """Poll `target` until the new cluster serves and (optionally) the old one is gone.

    Raises `RecoveryTimeoutError` naming the milestones not reached within `timeout` s.
    """
    expected = MILESTONES + ((OLD_CLUSTER_DELETED,) if wait_for_old_cluster else ())
    rollout = Rollout(patched_at=patched_at, old_cluster=old_cluster, expected=expected)
    old_pods = {p.name for p in target.cluster_pods(old_cluster)}
    deadline = time.monotonic() + timeout

    def reach(name: str, **detail: Any) -> None:
        if name not in rollout.milestones:
            rollout.milestones[name] = time.time()
            logger.info("Upgrade: %s after %.1f s", name, rollout.milestones[name] - patched_at)
            if mark is not None:
                mark(name, **detail)

    while rollout.missing():
        new, active = _new_cluster(target, old_cluster)
        if new:
            rollout.new_cluster = new
            reach("new_cluster_created", cluster=new)
            pods = target.cluster_pods(new)
            if len(pods) >= max(len(old_pods), 1) and all(p.ready for p in pods):
                reach("pod_ready", cluster=new, pods=len(pods))
        if new and active == new:
            reach("switched", cluster=new)
        if "switched" in rollout.milestones:
            ready = [e for e in target.serve_endpoints() if e.ready]
            if len(ready) >= baseline.endpoints and not {e.pod_name for e in ready} & old_pods:
                reach("endpoints_restored", endpoints=len(ready))
            if apps_running(target, baseline.applications):
                reach("applications_running")
            if wait_for_old_cluster and not target.cluster_pods(old_cluster):
                reach(OLD_CLUSTER_DELETED, cluster=old_cluster)
        if not rollout.missing():
            break
        if time.monotonic() > deadline:
            hint = (
                ""
                if rollout.new_cluster
                else " (KubeRay named no new cluster: it rolls out a new one only when "
                "rayClusterConfig changes beyond worker replicas, with zero-downtime upgrades "
                "enabled)"
            )
            raise RecoveryTimeoutError(
                f"the RayService was patched but the upgrade from cluster '{old_cluster}' did "
                f"not roll out within {timeout:.0f} s: still waiting for "
                f"{', '.join(rollout.missing())}{hint}; check `kubectl get "
                "rayservice,raycluster` and the operator's log, or raise `timeout`"
            )
        time.sleep(POLL_S)
    return rollout
