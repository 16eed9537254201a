"""KubeRay pods as `Pod` values, and the label selectors that find them.

KubeRay labels every pod of a RayCluster with `ray.io/cluster=<cluster>` and
`ray.io/node-type=head|worker`; only the RayService's active cluster is ever selected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from kubernetes import client

from chaosraysvc.model import Node, Pod, Role

__all__ = [
    "CLUSTER_LABEL",
    "NODE_TYPE_LABEL",
    "cluster_selector",
    "label_selector",
    "names_by_ip",
    "role_of",
    "to_node",
    "to_pod",
]

CLUSTER_LABEL = "ray.io/cluster"
NODE_TYPE_LABEL = "ray.io/node-type"


def label_selector(labels: Mapping[str, str]) -> str:
    """Return the equality label selector matching all of `labels` ("a=b,c=d")."""
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def cluster_selector(cluster: str) -> str:
    """Return the selector of the head and worker pods of RayCluster `cluster`."""
    return f"{CLUSTER_LABEL}={cluster},{NODE_TYPE_LABEL} in (head,worker)"


def role_of(pod: client.V1Pod) -> Role | None:
    """Return "head" or "worker" from the pod's KubeRay node-type label, else None."""
    node_type = ((pod.metadata and pod.metadata.labels) or {}).get(NODE_TYPE_LABEL)
    if node_type == "head":
        return "head"
    if node_type == "worker":
        return "worker"
    return None


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return 0.0


def _ready(pod: client.V1Pod) -> bool:
    for condition in (pod.status and pod.status.conditions) or []:
        if condition.type == "Ready":
            return str(condition.status) == "True"
    return False


def to_pod(pod: client.V1Pod, role: Role) -> Pod:
    """Return `pod` as a `Pod` of `role`.

    A pod being deleted (it has a `deletionTimestamp`) has phase "Terminating" and is not ready.
    """
    meta = pod.metadata or client.V1ObjectMeta()
    status = pod.status or client.V1PodStatus()
    terminating = meta.deletion_timestamp is not None
    return Pod(
        name=str(meta.name or ""),
        role=role,
        phase="Terminating" if terminating else str(status.phase or "Pending"),
        ready=False if terminating else _ready(pod),
        uid=str(meta.uid or ""),
        created_at=_epoch(meta.creation_timestamp),
        restarts=sum(int(cs.restart_count or 0) for cs in status.container_statuses or []),
        labels=dict(meta.labels or {}),
        address=str(status.pod_ip or ""),
        node=str((pod.spec and pod.spec.node_name) or ""),
    )


ZONE_LABEL = "topology.kubernetes.io/zone"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"


def to_node(node: client.V1Node) -> Node:
    """Return `node` with its Ready condition ("Unknown" when it has none)."""
    meta = node.metadata or client.V1ObjectMeta()
    ready, since, reason = "Unknown", 0.0, "no Ready condition"
    for condition in (node.status and node.status.conditions) or []:
        if condition.type == "Ready":
            ready = str(condition.status)
            since = _epoch(condition.last_transition_time)
            reason = str(condition.reason or "")
    return Node(
        name=str(meta.name or ""),
        ready=ready,
        since=since,
        schedulable=not bool(node.spec and node.spec.unschedulable),
        reason=reason,
        tainted=any(
            t.effect in ("NoSchedule", "NoExecute") for t in (node.spec and node.spec.taints) or []
        ),
        zone=str((meta.labels or {}).get(ZONE_LABEL, "")),
        control_plane=CONTROL_PLANE_LABEL in (meta.labels or {}),
    )


def names_by_ip(pods: Iterable[client.V1Pod]) -> dict[str, str]:
    """Return the name of the pod at each pod IP, for IPs only one of `pods` has."""
    seen: dict[str, list[str]] = {}
    for pod in pods:
        ip = str((pod.status and pod.status.pod_ip) or "")
        if ip:
            seen.setdefault(ip, []).append(str((pod.metadata and pod.metadata.name) or ""))
    return {ip: names[0] for ip, names in seen.items() if len(names) == 1}
