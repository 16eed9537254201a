"""The sandbox target: the local RayService HA sandbox seen through the target interface.

The sandbox runs one RayService, named in its spec (`rayservice-ha` in `default`): a
configuration naming another one is refused, as a missing RayService is on Kubernetes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from chaosraysvc.config import Settings
from chaosraysvc.errors import NotFoundError, RefusedError
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
from chaosraysvc.sandbox.manager import Sandbox
from chaosraysvc.sandbox.redis import send_command
from chaosraysvc.sandbox.status import SandboxStatus
from chaosraysvc.sandbox.supervisor import read_password
from chaosraysvc.serve.dashboard import Dashboard
from chaosraysvc.serve.nodes import RayNode
from chaosraysvc.targets.sandbox_ha import gather_sandbox_facts

ROLES: tuple[Role, ...] = ("head", "worker", "redis")
STATUS_TTL_S = 0.2


# Why the sandbox refuses drain_node.
DRAIN_REFUSED = (
    "refusing to drain a node on the sandbox: its head, workers and Redis are processes of "
    "this machine, with no Kubernetes node to cordon and no Eviction API. Run it against the "
    "kubernetes target (the lab's node: `chaosraysvc-lab node up --nodes 3`)"
)

NODE_LOSS_REFUSED = (
    "refusing to lose a node on the sandbox: its head, workers and Redis are processes of "
    "this machine, with no Kubernetes node to lose. Run it against the kubernetes target "
    "(the lab's nodes: `chaosraysvc-lab node up --nodes 3`)"
)

# Why the sandbox refuses partition_redis (its message, word for word, in the tests).
PARTITION_REFUSED = (
    "refusing to cut the Ray pods off from Redis on the sandbox: a NetworkPolicy is a "
    "Kubernetes object, and the sandbox's head, workers and Redis are processes sharing this "
    "machine's loopback, with no network between them to cut. Run it against the kubernetes "
    "target (a cluster whose network plugin enforces NetworkPolicy; the lab's node does, with "
    "kube-router)"
)


class SandboxTarget:
    """Probes and faults on a sandbox (see `chaosraysvc.sandbox`).

    Raises `SandboxError` when there is no sandbox in the state directory (or, with
    `running`, when it is not up) and `NotFoundError` when the configuration names a
    RayService or namespace other than the sandbox's own. `running=False` is for inspecting
    a stopped sandbox (the doctor reads its spec alone).
    """

    kind = "sandbox"

    def __init__(self, settings: Settings, running: bool = True) -> None:
        self.settings = settings
        self.running = running
        self.sandbox = Sandbox(settings.sandbox_state_dir)
        self.spec = self.sandbox.spec()
        self._cached: tuple[float, SandboxStatus] | None = None

    def validate(self) -> None:
        """Check the configuration names the sandbox's own RayService and, with `running`, it is up.

        The sandbox's name and namespace are those of its spec (`<state dir>/spec.json`,
        written by `sandbox up`), read whether or not it is up.
        """
        name, namespace = self.settings.rayservice_name, self.settings.rayservice_namespace
        if (name, namespace) != (self.spec.rayservice_name, self.spec.namespace):
            raise NotFoundError(
                f"RayService '{name}' not found in namespace '{namespace}': the sandbox in "
                f"{self.spec.state_dir} runs RayService '{self.spec.rayservice_name}' in "
                f"namespace '{self.spec.namespace}'; set rayservice_name / rayservice_namespace "
                "($RAYSVC_NAME / $RAYSVC_NAMESPACE) to those, or leave them unset"
            )
        if self.running:
            self.sandbox.require_up()

    def close(self) -> None:
        """Hold nothing to release (each call reads the state directory afresh)."""

    def describe(self) -> dict[str, Any]:
        current = self.sandbox.state()
        return {
            "target": "sandbox",
            "rayservice": self.spec.rayservice_name,
            "namespace": self.spec.namespace,
            "cluster": current.cluster_name if current else "",
            "state_dir": str(self.spec.state_dir),
            "redis_storage": self.spec.redis_storage,
            "head_in_serve_svc": self.spec.head_in_serve_svc,
        }

    def _status(self) -> SandboxStatus:
        """Return the sandbox status, shared by calls within `STATUS_TTL_S` (one /proc scan)."""
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > STATUS_TTL_S:
            self._cached = (now, self.sandbox.status(check_serve=False))
        return self._cached[1]

    def nodes(self) -> list[Node]:
        """Return [] : the sandbox's pods are process groups on this machine, not on nodes."""
        return []

    def pods(self) -> list[Pod]:
        status = self._status()
        return [
            Pod(
                name=p.name,
                role=_role(p.role),
                phase=p.phase,
                ready=p.ready,
                uid=p.uid,
                created_at=p.created_at,
                restarts=p.restarts,
                labels=p.labels,
                address="127.0.0.1",
            )
            for p in status.pods
        ]

    def serve_endpoints(self) -> list[Endpoint]:
        status = self._status()
        return [
            Endpoint(pod_name=e.pod, url=e.url, ready=e.ready, role=_role(e.role))
            for e in status.endpoints
        ]

    def gcs_fault_tolerance(self) -> GcsFaultTolerance:
        return GcsFaultTolerance(
            enabled=True,
            backend="redis",
            redis_address=f"127.0.0.1:{self.spec.redis_port}",
            persistent=self.spec.redis_storage == "persistent",
            source="sandbox head env RAY_REDIS_ADDRESS",
        )

    def delete_redis_primary(self, pod: Pod, host: str, grace_period: int = 0) -> None:
        raise RefusedError(
            "the sandbox runs one Redis and no Sentinel: there is no primary to fail over "
            "from; run redis-failover against a Sentinel-backed Redis on Kubernetes "
            "(`chaosraysvc-lab node up --redis sentinel` gives a local one)"
        )

    def delete_pod(self, pod: Pod, grace_period: int = 0, dry_run: bool = False) -> None:
        current = self.sandbox.require_up()
        if current.pod(pod.name) is None:
            raise NotFoundError(
                f"pod {pod.name!r} is not a pod of the sandbox in {self.spec.state_dir}"
            )
        if dry_run:
            return
        self.sandbox.delete_pod(pod.name, grace_period=grace_period)

    def kill_process(self, pod: Pod, process: str) -> None:
        self.sandbox.kill_process(pod.name, process)

    def exec_in_pod(self, pod: Pod, argv: Sequence[str], timeout: float = 30.0) -> tuple[int, str]:
        raise RefusedError(
            f"the sandbox cannot run a command inside pod '{pod.name}': its pods are process "
            "groups on this machine's loopback, without a network namespace of their own"
        )

    def partition_redis(self, dry_run: bool = False) -> RedisPartition:
        raise RefusedError(PARTITION_REFUSED)

    def heal_redis_partition(self) -> list[str]:
        return []  # partition_redis never runs here: nothing to heal

    def drain_node(
        self,
        node: str,
        timeout: float,
        grace_period: int | None = None,
        force: bool = False,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        raise RefusedError(DRAIN_REFUSED)

    def uncordon_nodes(self) -> list[str]:
        return []  # drain_node never runs here: nothing to uncordon

    def lose_nodes(self, nodes: Sequence[str], timeout: float = 120.0) -> str:
        raise RefusedError(NODE_LOSS_REFUSED)

    def restore_nodes(self, nodes: Sequence[str], timeout: float = 120.0) -> str:
        raise RefusedError(NODE_LOSS_REFUSED)

    def delete_node(self, name: str) -> bool:
        raise RefusedError(NODE_LOSS_REFUSED)

    def find_pod(self, host: str) -> Pod | None:
        """The sandbox's processes have no addresses of their own: no pod is named by `host`."""
        return None

    def redis_command(
        self, argv: Sequence[str], timeout: float = 10.0, address: str = ""
    ) -> RedisReply | None:
        """Send `argv` to the sandbox's Redis on loopback (or to `address`, "host:port"),
        authenticated with its password (the state directory's, which the GCS uses too)."""
        self.sandbox.require_up()
        password = read_password(self.spec.state_dir)
        if address:
            host, port = address.rsplit(":", 1)
            return send_command(int(port), password, argv, timeout, host=host)
        return send_command(self.spec.redis_port, password, argv, timeout)

    def ray_clusters(self) -> tuple[str, str]:
        current = self.sandbox.state()
        return (current.cluster_name if current else "", "")

    def cluster_pods(self, cluster: str) -> list[Pod]:
        active, _ = self.ray_clusters()
        return [p for p in self.pods() if p.role != "redis"] if cluster == active else []

    def upgrade(self, patch: Mapping[str, Any], dry_run: bool = False) -> None:
        raise RefusedError(
            "the sandbox cannot upgrade its RayService: it runs one Ray cluster and no KubeRay "
            "operator to roll out a new one. Run the upgrade against the kubernetes target "
            "(`chaosraysvc sandbox up --kubernetes` gives a local one with the real operator)"
        )

    def serve_url(self) -> str:
        return self.settings.serve_url or f"http://127.0.0.1:{self.spec.serve_port}"

    def dashboard(self) -> Dashboard:
        if self.settings.dashboard_url:
            return Dashboard(self.settings.dashboard_url, route="dashboard_url")
        return Dashboard(f"http://127.0.0.1:{self.spec.dashboard_port}", route="the sandbox")

    def pod_names(self, nodes: Sequence[RayNode]) -> dict[str, str]:
        """Return the pod of each Ray node: the one whose raylet has its node-manager port."""
        current = self.sandbox.state()
        by_port = {p.ports.get("node_manager"): p.name for p in current.pods} if current else {}
        return {n.node_id: by_port.get(n.node_manager_port, "") for n in nodes}

    def ha_facts(self, live: bool = True) -> HaFacts:
        """Return the sandbox's HA facts (its spec, env and Serve config; live placement)."""
        return gather_sandbox_facts(self, live=live)


def _role(value: str) -> Role:
    for role in ROLES:
        if role == value:
            return role
    raise ValueError(f"unknown pod role {value!r}")
