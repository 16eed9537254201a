"""The sandbox target: the local RayService HA sandbox seen through the target interface."""

from __future__ import annotations

import time
from typing import Any

from chaosraysvc.config import Settings
from chaosraysvc.errors import NotFoundError
from chaosraysvc.sandbox.manager import Sandbox
from chaosraysvc.sandbox.netcheck import port_open
from chaosraysvc.sandbox.status import SandboxStatus
from chaosraysvc.serve.nodes import RayNode
from chaosraysvc.targets.base import Endpoint, GcsFaultTolerance, Pod, Role

ROLES: tuple[Role, ...] = ("head", "worker", "redis")
STATUS_TTL_S = 0.2


class SandboxTarget:
    """Probes and faults on a running sandbox (see `chaosraysvc.sandbox`)."""

    kind = "sandbox"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sandbox = Sandbox(settings.sandbox_state_dir)
        self.sandbox.require_up()
        self.spec = self.sandbox.spec()
        self._cached: tuple[float, SandboxStatus] | None = None

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

    def delete_pod(self, pod: Pod, grace_period: int = 0, dry_run: bool = False) -> None:
        current = self.sandbox.require_up()
        if current.pod(pod.name) is None:
            raise NotFoundError(
                f"pod {pod.name!r} is not a pod of the sandbox in {self.spec.state_dir}"
            )
        if dry_run:
            return
        self.sandbox.delete_pod(pod.name, grace_period=grace_period)

    def serve_url(self) -> str:
        return self.settings.serve_url or f"http://127.0.0.1:{self.spec.serve_port}"

    def dashboard_url(self) -> str:
        return self.settings.dashboard_url or f"http://127.0.0.1:{self.spec.dashboard_port}"

    def dashboard_reachable(self) -> bool:
        return port_open(self.spec.dashboard_port)

    def pod_for_node(self, node: RayNode) -> str:
        """Return the pod whose raylet listens on `node`'s node-manager port."""
        current = self.sandbox.state()
        for pod in current.pods if current else []:
            if pod.ports.get("node_manager") == node.node_manager_port:
                return pod.name
        return ""


def _role(value: str) -> Role:
    for role in ROLES:
        if role == value:
            return role
    raise ValueError(f"unknown pod role {value!r}")
