"""The domain types every layer shares: a RayService's pods, its serve endpoints, its GCS set-up.

Plain frozen data with no I/O, imported by everything above (`kube`, `sandbox`, `serve`,
`targets`, `doctor`, `recovery`, `activities`) and importing nothing of chaosraysvc. The HA
facts the doctor's rules read are in `chaosraysvc.model.ha`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Endpoint", "GcsFaultTolerance", "Node", "Pod", "RedisPartition", "RedisReply", "Role"]

Role = Literal["head", "worker", "redis"]


@dataclass(frozen=True)
class Pod:
    """A pod of the RayService (or a sandbox process group standing for one)."""

    name: str
    role: Role
    phase: str  # Pending | Running | Terminating | Succeeded | Failed
    ready: bool
    uid: str
    created_at: float  # epoch seconds
    restarts: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    address: str = ""  # pod IP (kubernetes) or host (sandbox)
    node: str = ""  # the node it is bound to (kubernetes; "" while unscheduled or in a sandbox)


@dataclass(frozen=True)
class Node:
    """A Kubernetes node as recovery needs it: its Ready condition and since when."""

    name: str
    ready: str  # the Ready condition's status: "True" | "False" | "Unknown"
    since: float  # epoch seconds of the condition's lastTransitionTime (0: unknown)
    schedulable: bool = True  # False when cordoned (spec.unschedulable)
    reason: str = ""  # e.g. NodeStatusUnknown (the kubelet stopped posting status)
    tainted: bool = False  # a NoSchedule or NoExecute taint: no workload pod goes there
    zone: str = ""  # its topology.kubernetes.io/zone label
    control_plane: bool = False  # labelled node-role.kubernetes.io/control-plane


@dataclass(frozen=True)
class Endpoint:
    """One address behind the serve Service, with its readiness."""

    pod_name: str
    url: str  # e.g. http://10.1.2.3:8000 or http://127.0.0.1:41234
    ready: bool
    role: Role = "worker"


@dataclass(frozen=True)
class GcsFaultTolerance:
    """How the cluster's GCS survives a head loss."""

    enabled: bool
    backend: Literal["redis", "embedded", "none"]
    redis_address: str = ""
    persistent: bool | None = None  # Redis keeps data across a pod deletion (None: unknown)
    source: str = ""  # which field, annotation or env var told us


@dataclass(frozen=True)
class RedisPartition:
    """The NetworkPolicies that cut a RayCluster off from its GCS Redis (made, or to be)."""

    cluster: str  # the RayCluster whose pods are cut off (label ray.io/cluster)
    policies: tuple[str, ...]  # "namespace/name" of each NetworkPolicy
    redis_pods: tuple[str, ...]  # the Redis pods behind the GCS fault-tolerance address
    redis_address: str  # host:port the GCS connects to


@dataclass(frozen=True)
class RedisReply:
    """Redis' answer to one command: its text ("OK", "PONG") and whether it was an error reply
    (then `text` is the error, e.g. "WRONGPASS invalid username-password pair"). `lines`
    holds every line of a longer answer (an INFO section, an array flattened one element a
    line, as redis-cli prints it without a tty) where the sender kept them."""

    text: str
    error: bool = False
    lines: tuple[str, ...] = field(default=(), compare=False)
