"""What the HA rules look at, gathered from a target: `HaFacts`, plain data with its evidence.

Each target's `ha_facts()` fills it (`targets.kubernetes_ha` from a RayService spec and its
live pods, `targets.sandbox_ha` from the sandbox's spec) and, when reachable, the Ray
dashboard adds the live placement (`serve.live`); `doctor.rules` reads nothing else. Every
fact carries a string saying where it was seen (a field, a label, an env var, a live
placement), which the rules quote as evidence. Unknown stays unknown (`None`), never a guess.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "KUBERAY_FT_RECONNECT_S",
    "QUEUE_LENGTH_CACHE_DEFAULT_S",
    "QUEUE_LENGTH_CACHE_ENV",
    "RAY_RECONNECT_DEFAULT_S",
    "RECONNECT_ENV",
    "REDIS_CONNECT_RETRIES_DEFAULT",
    "REDIS_CONNECT_RETRIES_ENV",
    "DeploymentFacts",
    "HaFacts",
    "Placement",
    "WorkerGroupFacts",
]

QUEUE_LENGTH_CACHE_ENV = "RAY_SERVE_QUEUE_LENGTH_CACHE_TIMEOUT_S"
QUEUE_LENGTH_CACHE_DEFAULT_S = 10.0  # Serve's default
RECONNECT_ENV = "RAY_gcs_rpc_server_reconnect_timeout_s"
RAY_RECONNECT_DEFAULT_S = 60.0  # Ray's default; KubeRay sets 600 on workers under GCS FT
DRAIN_TIMEOUT_ENV = "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"
RAY_DRAIN_TIMEOUT_DEFAULT_S = 30.0  # Ray 2.60: how long `ray start --block` drains on SIGTERM
POD_GRACE_DEFAULT_S = 30.0  # a pod's terminationGracePeriodSeconds when its spec says nothing
KUBERAY_FT_RECONNECT_S = 600.0
# How often a Ray process retries connecting to the Redis address it resolved (each retry
# `RAY_redis_db_connect_wait_milliseconds`, 500 ms, after the connect's own failure)
REDIS_CONNECT_RETRIES_ENV = "RAY_redis_db_connect_retries"
REDIS_CONNECT_RETRIES_DEFAULT = 120  # Ray 2.60's


@dataclass
class Placement:
    """Where the live replicas of one deployment run (read from the dashboard)."""

    per_pod: dict[str, int] = field(default_factory=dict)  # pod -> RUNNING/STARTING replicas
    on_head: int = 0  # of those, on the head pod
    unplaced: int = 0  # replicas with no node yet

    @property
    def placed(self) -> int:
        return sum(self.per_pod.values())


@dataclass
class DeploymentFacts:
    """One Serve deployment as declared (serveConfigV2 / the sandbox's config) and placed."""

    app: str
    name: str
    num_replicas: int | None = None  # fixed count; None when autoscaling or not declared
    autoscaling: bool = False
    min_replicas: int | None = None  # autoscaling_config.min_replicas
    max_replicas_per_node: int | None = None  # None: no limit
    source: str = ""  # where the declaration was read
    placement: Placement | None = None  # None: live placement not inspected

    @property
    def key(self) -> str:
        return f"{self.app}/{self.name}"

    @property
    def least_replicas(self) -> int | None:
        """Return the fewest replicas it is declared to run (None: unknown)."""
        return self.min_replicas if self.autoscaling else self.num_replicas


@dataclass
class WorkerGroupFacts:
    """One worker group: its size and its workers' GCS reconnect timeout."""

    name: str
    replicas: int | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    live_pods: int | None = None  # running worker pods of the group (None: not inspected)
    reconnect_timeout_s: float | None = None  # RAY_gcs_rpc_server_reconnect_timeout_s in effect
    reconnect_source: str = ""
    image: str = ""
    # what a deletion gives its pods: the kubelet's grace, Ray's drain on SIGTERM, a preStop
    termination_grace_s: float | None = None  # None: not inspected
    drain_timeout_s: float | None = None
    pre_stop: bool = False
    grace_source: str = ""


@dataclass
class HaFacts:
    """Everything the HA rules need about one target, with where each fact was seen."""

    target: str  # e.g. "RayService default/rayservice-ha (kubernetes)"
    # GCS fault tolerance and its store
    gcs_ft_enabled: bool = False
    gcs_ft_backend: str = "none"  # redis | embedded | none
    gcs_ft_source: str = ""
    gcs_storage_persistent: bool | None = None  # None: cannot tell
    gcs_storage_evidence: str = ""
    # what the GCS address is: "sentinel" (Sentinels in front of a primary and replicas),
    # "single" (one Redis), "" (no Redis, or not inspected)
    redis_topology: str = ""
    redis_topology_evidence: str = ""
    # RAY_redis_db_connect_retries on the head ("" when not set: Ray's 120), and where from
    head_redis_connect_retries: str = ""
    head_redis_connect_retries_source: str = ""
    # the serve Service and the head's proxy
    head_in_serve_svc: bool = True
    head_in_serve_svc_evidence: str = ""
    proxy_location: str = "EveryNode"
    head_proxy_running: bool | None = None
    head_proxy_evidence: str = ""
    # where -> raw value of RAY_SERVE_QUEUE_LENGTH_CACHE_TIMEOUT_S ("" when not set)
    queue_length_cache_timeout: dict[str, str] = field(default_factory=dict)
    # Serve deployments
    deployments: list[DeploymentFacts] = field(default_factory=list)
    deployments_source: str = ""
    placement_source: str = ""  # "": live placement not inspected
    head_num_cpus: str | None = None  # rayStartParams num-cpus; "" not set; None unknown
    head_num_cpus_evidence: str = ""
    # workers
    worker_groups: list[WorkerGroupFacts] = field(default_factory=list)
    autoscaling: bool = False  # enableInTreeAutoscaling: minReplicas may be all there is
    # versions
    ray_version: str = ""
    ray_version_source: str = ""
    head_image: str = ""
    # where the live pods run: (role, pod, node) for the Ray pods and a single Redis; the
    # nodes' zones (topology.kubernetes.io/zone; {} when the nodes could not be read)
    placement: list[tuple[str, str, str]] = field(default_factory=list)
    node_zones: dict[str, str] = field(default_factory=dict)
    # the Ray templates ("headGroupSpec", "worker group 'x'") whose zone spread is required
    # (DoNotSchedule) but counts tainted nodes (nodeTaintsPolicy not Honor)
    zone_spread_counts_tainted: list[str] = field(default_factory=list)
    # each node's spec.providerID ("": none, no cloud's node controller knows it)
    node_providers: dict[str, str] = field(default_factory=dict)
    # what could not be inspected, and why
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
