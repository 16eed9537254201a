"""The interface every target implements: the sandbox and a Kubernetes cluster.

A target answers questions about one RayService's *pods* (head, workers, Redis), its
serve *endpoints* (the ready addresses behind the serve Service), its GCS fault-tolerance
set-up, its HA facts (for the doctor), which pod each Ray node runs in, and where its Serve
and dashboard URLs are; and it deletes pods. Everything about Serve itself (applications,
proxies, replicas) is read from the dashboard's REST API by `chaosraysvc.serve`, the same
way for both targets. Targets are built in one place: `chaosraysvc.targets.resolve_target`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from chaosraysvc.model import (
    Endpoint,
    GcsFaultTolerance,
    Node,
    Pod,
    RedisPartition,
    RedisReply,
    Role,
)
from chaosraysvc.model.ha import HaFacts
from chaosraysvc.serve.dashboard import Dashboard
from chaosraysvc.serve.nodes import RayNode

__all__ = ["Target", "pods_of_role", "ready_endpoint_count"]


class Target(Protocol):
    """What probes, actions and the doctor need from a target."""

    kind: str  # "sandbox" | "kubernetes"

    def validate(self) -> None:
        """Check, cheaply, that the RayService exists and can be reached.

        Raises `NotFoundError` naming the RayService and namespace that were not found,
        `ConfigurationError` when the target cannot be configured (no kubeconfig), or
        `TargetNotReadyError` when it is not running.
        """
        ...

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

    def nodes(self) -> list[Node]:
        """Return the cluster's nodes with their Ready condition ([] where there are none).

        Raises `KubernetesApiError` (status 403) when the account may not read nodes.
        """
        ...

    def pod_names(self, nodes: Sequence[RayNode]) -> dict[str, str]:
        """Return the pod each Ray node runs in, by node id ("" when it cannot be told)."""
        ...

    def ha_facts(self, live: bool = True) -> HaFacts:
        """Return what the doctor's rules need; `live` adds the dashboard's placement."""
        ...

    def delete_pod(self, pod: Pod, grace_period: int = 0, dry_run: bool = False) -> None:
        """Delete `pod` (refusing pods that are not the RayService's own)."""
        ...

    def delete_redis_primary(self, pod: Pod, host: str, grace_period: int = 0) -> None:
        """Delete `pod`, the Redis primary a Sentinel named at `host`, if it is still there.

        Raises `RefusedError` where there is no Sentinel (the sandbox) or the pod moved.
        """
        ...

    def kill_process(self, pod: Pod, process: str) -> None:
        """SIGKILL the process named `process` inside `pod` (as `kubectl exec ... kill -9`).

        Raises `RefusedError` where the target cannot reach inside a pod.
        """
        ...

    def exec_in_pod(self, pod: Pod, argv: Sequence[str], timeout: float = 30.0) -> tuple[int, str]:
        """Run `argv` in `pod`'s first container (as `kubectl exec`); return (exit code, output).

        Raises `RefusedError` where the target cannot reach inside a pod, or for a pod that is
        not the RayService's own.
        """
        ...

    def partition_redis(self, dry_run: bool = False) -> RedisPartition:
        """Cut the active Ray cluster's pods off from the GCS Redis pods (both directions).

        Raises `RefusedError` where the target has no network policy to do it with, or when
        the cluster has no Redis; `dry_run` validates without changing anything.
        """
        ...

    def heal_redis_partition(self) -> list[str]:
        """Undo `partition_redis`; return what was removed ([] when nothing was there)."""
        ...

    def drain_node(
        self,
        node: str,
        timeout: float,
        grace_period: int | None = None,
        force: bool = False,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Cordon `node` and evict its pods through the Eviction API (PodDisruptionBudgets
        honoured), waiting up to `timeout` seconds until they are gone; return what was done
        and when (`chaosraysvc.kube.drain.Drained`). A pod no controller owns refuses the
        drain unless `force`. `dry_run` has the API server validate the cordon and each
        eviction only. Raises `RefusedError` where there are no nodes."""
        ...

    def uncordon_nodes(self) -> list[str]:
        """Undo `drain_node`'s cordons (only those it made); return the nodes' names."""
        ...

    def lose_nodes(self, nodes: Sequence[str], timeout: float = 120.0) -> str:
        """Lose `nodes` as machines are lost, with the command the user configured
        (`chaosraysvc.kube.nodeloss`); return what it printed. Raises `RefusedError` where
        there are no nodes, `ConfigurationError` when no command is configured."""
        ...

    def restore_nodes(self, nodes: Sequence[str], timeout: float = 120.0) -> str:
        """Bring lost `nodes` back with the configured restore command; return its output."""
        ...

    def delete_node(self, name: str) -> bool:
        """Delete Node object `name`, as a cloud's node controller does once the machine is
        gone; False when it was not there."""
        ...

    def find_pod(self, host: str) -> Pod | None:
        """Return the pod named by `host` (its IP, name or DNS name), None when none is."""
        ...

    def redis_command(
        self, argv: Sequence[str], timeout: float = 10.0, address: str = ""
    ) -> RedisReply | None:
        """Send `argv` to the GCS's Redis as a new client authenticated as the GCS is (its
        password); return the reply, or None when none came within `timeout` seconds.
        `address` ("host:port") sends it to another Redis of the same set-up instead (the
        primary a Sentinel names), reached from where the GCS's Redis is.

        Raises `RefusedError` when there is no Redis to reach (another GCS backend, or an
        address with no pod behind it), `NotFoundError` when no Redis pod runs, and
        `KubernetesApiError` (403, naming deploy/exec-role.yaml) when the account may not exec.
        """
        ...

    def ray_clusters(self) -> tuple[str, str]:
        """Return the (active, pending) Ray cluster names; pending is "" outside an upgrade."""
        ...

    def cluster_pods(self, cluster: str) -> list[Pod]:
        """Return the head and worker pods of Ray cluster `cluster` (active or not)."""
        ...

    def upgrade(self, patch: Mapping[str, Any], dry_run: bool = False) -> None:
        """Change the RayService's cluster spec by a JSON merge patch of `spec`.

        Raises `RefusedError` where there is no operator to roll out a new cluster.
        """
        ...

    def serve_url(self) -> str:
        """Return the base URL of the serve Service (no trailing slash)."""
        ...

    def dashboard(self) -> Dashboard:
        """Return the Ray dashboard: its base URL and the route requests take to it."""
        ...

    def close(self) -> None:
        """Release what the target holds (API connections)."""
        ...


def pods_of_role(target: Target, role: Role) -> list[Pod]:
    """Return `target`'s pods of one role, oldest first."""
    return sorted((p for p in target.pods() if p.role == role), key=lambda p: p.created_at)


def ready_endpoint_count(target: Target) -> int:
    """Return how many serve endpoints are ready."""
    return sum(1 for e in target.serve_endpoints() if e.ready)
