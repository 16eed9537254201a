"""The interface every target implements: the sandbox and a Kubernetes cluster.

A target answers questions about one RayService's *pods* (head, workers, Redis),
its serve *endpoints* (the ready addresses behind the serve Service), its GCS
fault-tolerance set-up, and where its Serve and dashboard URLs are; and it deletes
pods. Everything about Serve itself (applications, proxies, replicas) is read from
the dashboard's REST API by `chaosraysvc.serve`, the same way for both targets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

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


class Target(Protocol):
    """What probes and actions need from a target."""

    kind: str  # "sandbox" | "kubernetes"

    def describe(self) -> dict[str, Any]:
        """Return what is targeted, for journals and reports (never secrets)."""
        ...

    def pods(self) -> list[Pod]:
        """Return the RayService's pods: head, workers, and the resolved Redis if any."""
        ...

    def serve_endpoints(self) -> list[Endpoint]:
        """Return every endpoint behind the serve Service, ready or not."""
        ...

    def gcs_fault_tolerance(self) -> GcsFaultTolerance:
        """Return the cluster's GCS fault-tolerance set-up."""
        ...

    def delete_pod(self, pod: Pod, grace_period: int = 0, dry_run: bool = False) -> None:
        """Delete `pod` (refusing pods that are not the RayService's own)."""
        ...

    def serve_url(self) -> str:
        """Return the base URL of the serve Service (no trailing slash)."""
        ...

    def dashboard_url(self) -> str:
        """Return the base URL of the Ray dashboard (no trailing slash)."""
        ...


def pods_of_role(target: Target, role: Role) -> list[Pod]:
    """Return `target`'s pods of one role, oldest first."""
    return sorted((p for p in target.pods() if p.role == role), key=lambda p: p.created_at)


def ready_endpoint_count(target: Target) -> int:
    """Return how many serve endpoints are ready."""
    return sum(1 for e in target.serve_endpoints() if e.ready)
