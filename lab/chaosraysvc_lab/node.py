"""The Node object of the local machine and its heartbeat, as a kubelet keeps them.

The node-lifecycle controller marks a node's pods NotReady (and later evicts them) once the
node's Lease in `kube-node-lease` is older than its grace period (50 s). `NodeHeartbeat`
registers the Node with capacity and a Ready condition and renews the Lease every
`interval` seconds in a daemon thread until `stop()`.
"""

from __future__ import annotations

import datetime
import threading
from typing import Any

NODE_LEASE_NAMESPACE = "kube-node-lease"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


ZONE_LABEL = "topology.kubernetes.io/zone"
CONTROL_PLANE = "node-role.kubernetes.io/control-plane"


def node_body(
    name: str,
    address: str,
    cpu: str = "8",
    memory: str = "16Gi",
    kubelet_port: int = 0,
    zone: str = "",
    control_plane: bool = False,
    provider_id: str = "",
) -> dict[str, Any]:
    """Return a Node with capacity and the labels a kubelet sets (and, with `kubelet_port`,
    where the API server reaches its kubelet API: `daemonEndpoints.kubeletEndpoint.Port`).
    `zone` sets `topology.kubernetes.io/zone` (a cloud's node controller does); a
    `control_plane` node gets kubeadm's role label and NoSchedule taint (no workload pod
    goes there); `provider_id` sets `spec.providerID` (a cloud's machine; the lab's nodes have
    none, as on bare metal)."""
    capacity = {"cpu": cpu, "memory": memory, "pods": "110"}
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        **({ZONE_LABEL: zone} if zone else {}),
        **({CONTROL_PLANE: ""} if control_plane else {}),
    }
    taints = [{"key": CONTROL_PLANE, "effect": "NoSchedule"}] if control_plane else []
    spec = {**({"taints": taints} if taints else {}),
            **({"providerID": provider_id} if provider_id else {})}  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        **({"spec": spec} if spec else {}),
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "addresses": [
                {"type": "InternalIP", "address": address},
                {"type": "Hostname", "address": name},
            ],
            **(
                {"daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}}}
                if kubelet_port
                else {}
            ),
        },
    }


def _ready_condition() -> dict[str, Any]:
    now = _now().isoformat()
    return {
        "type": "Ready",
        "status": "True",
        "reason": "KubeletReady",
        "message": "chaosraysvc process kubelet is posting ready status",
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
    }


class NodeHeartbeat:
    """Register Node `name` and keep it Ready (status and Lease) until stopped."""

    def __init__(
        self,
        api_client: Any,
        name: str,
        address: str,
        interval: float = 10.0,
        kubelet_port: int = 0,
        zone: str = "",
        control_plane: bool = False,
        provider_id: str = "",
    ) -> None:
        from kubernetes import client

        self._core = client.CoreV1Api(api_client)
        self._coordination = client.CoordinationV1Api(api_client)
        self.name = name
        self.address = address
        self.interval = interval
        self.kubelet_port = kubelet_port
        self.zone = zone
        self.control_plane = control_plane
        self.provider_id = provider_id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []

    def start(self) -> NodeHeartbeat:
        """Create (or take over) the Node and its Lease, then renew them in the background."""
        from kubernetes.client.exceptions import ApiException

        try:
            # the client accepts plain dicts
            body: Any = self._body()
            self._core.create_node(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
        self._beat()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{self.name}")
        self._thread.daemon = True
        self._thread.start()
        return self

    def _body(self) -> dict[str, Any]:
        return node_body(
            self.name, self.address, kubelet_port=self.kubelet_port, zone=self.zone,
            control_plane=self.control_plane, provider_id=self.provider_id,
        )  # fmt: skip

    def _beat(self) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        status = self._body()["status"]
        status["conditions"] = [_ready_condition()]
        self._core.patch_node_status(self.name, {"status": status})
        spec = client.V1LeaseSpec(
            holder_identity=self.name, lease_duration_seconds=40, renew_time=_now()
        )
        # renewed as the kubelet renews it: a Lease takes no unconditional update, so a patch
        # (a replace without the resourceVersion is refused, 422)
        try:
            self._coordination.patch_namespaced_lease(
                self.name, NODE_LEASE_NAMESPACE, {"spec": {
                    "holderIdentity": self.name, "leaseDurationSeconds": 40,
                    "renewTime": spec.renew_time}},
            )  # fmt: skip
        except ApiException as exc:
            if exc.status != 404:
                raise
            lease = client.V1Lease(
                metadata=client.V1ObjectMeta(name=self.name, namespace=NODE_LEASE_NAMESPACE),
                spec=spec,
            )
            self._coordination.create_namespaced_lease(NODE_LEASE_NAMESPACE, lease)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._beat()
            except Exception as exc:  # noqa: BLE001 - kept for the owner to read; keep beating
                self.errors.append(f"{type(exc).__name__}: {exc}")

    def stop(self) -> None:
        """Stop renewing (the Node stays registered)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
