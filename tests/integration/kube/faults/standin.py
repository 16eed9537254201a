"""A stand-in for the controllers that react to a pod deletion in a real cluster.

- the kubelet: a pod deleted with a grace period stays "terminating" for that long, then goes;
- KubeRay (head and worker pods, labelled `ray.io/cluster`) and the ReplicaSet controller
  (the Redis Deployment's pod): a deleted pod is replaced after `replace_after` seconds by a
  new one (new name from the same prefix, new uid), Pending without an IP, which becomes
  Running and Ready with a fresh 198.18.3.x address `ready_after` seconds later; KubeRay
  flips a new head's `ray.io/serve` label to "true" once it is ready;
- the EndpointSlice controller: every Service's existing EndpointSlice (and core Endpoints)
  follows its selected pods (ready / serving / terminating), and the RayService's
  `status.numServeEndpoints` follows the serve Service.

All of it runs on the API double's event loop (`loop.call_later`).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import random
import uuid
from typing import Any

from .apidouble import ApiDouble, now_rfc3339, selector_matches

_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes' generateName draws from


def _ready(pod: dict[str, Any]) -> bool:
    for condition in pod.get("status", {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


class KubeRayStandIn:
    """Replaces deleted RayService pods and keeps EndpointSlices in step, like the cluster."""

    def __init__(
        self,
        double: ApiDouble,
        loop: asyncio.AbstractEventLoop,
        replace_after: float = 0.3,
        ready_after: float = 0.3,
    ) -> None:
        self.double = double
        self.loop = loop
        self.replace_after = replace_after
        self.ready_after = ready_after
        self.replaced: dict[str, str] = {}  # old pod name -> its replacement's name
        self._ips = (f"198.18.3.{n}" for n in itertools.count(10))
        self._random = random.Random(7)
        double.listeners.append(self._on_pod_event)

    # -- reactions ---------------------------------------------------------------------------

    def _on_pod_event(self, event: str, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        self.reconcile()
        if event == "terminating":
            grace = float(meta.get("deletionGracePeriodSeconds") or 0)
            self.loop.call_later(
                grace, self._kubelet_removes, meta.get("namespace"), meta["name"], meta["uid"]
            )
        elif event == "deleted" and self._owned(pod):
            self.loop.call_later(self.replace_after, self._replace, pod)

    def _owned(self, pod: dict[str, Any]) -> bool:
        meta = pod["metadata"]
        owners = {ref.get("kind") for ref in meta.get("ownerReferences") or []}
        return "ray.io/cluster" in (meta.get("labels") or {}) or "ReplicaSet" in owners

    def _kubelet_removes(self, namespace: str | None, name: str, uid: str) -> None:
        current = self.double.get("v1/pods", namespace, name)
        if current is None or current["metadata"].get("uid") != uid:
            return
        self.double.remove("v1/pods", namespace, name)
        self._on_pod_event("deleted", current)

    def _replace(self, old: dict[str, Any]) -> None:
        new = copy.deepcopy(old)
        meta = new["metadata"]
        prefix = meta.get("generateName") or meta["name"][:-5]
        suffix = "".join(self._random.choice(_SUFFIX_ALPHABET) for _ in range(5))
        meta.update(
            name=prefix + suffix,
            uid=str(uuid.uuid4()),
            creationTimestamp=now_rfc3339(),
            resourceVersion=str(self._random.randrange(10**6, 10**7)),
        )
        meta.pop("deletionTimestamp", None)
        meta.pop("deletionGracePeriodSeconds", None)
        labels = meta.setdefault("labels", {})
        if labels.get("ray.io/node-type") == "head":
            labels["ray.io/serve"] = "false"  # KubeRay sets it once the head's proxy is healthy
        status = new.setdefault("status", {})
        status.update(
            phase="Pending",
            conditions=[
                {"type": "PodScheduled", "status": "True"},
                {"type": "Initialized", "status": "False"},
                {"type": "ContainersReady", "status": "False"},
                {"type": "Ready", "status": "False"},
            ],
        )
        for key in ("podIP", "podIPs", "startTime"):
            status.pop(key, None)
        for container in status.get("containerStatuses") or []:
            container.update(
                ready=False,
                started=False,
                restartCount=0,
                state={"waiting": {"reason": "ContainerCreating"}},
            )
            container.pop("lastState", None)
        self.double.put(new)
        self.replaced[old["metadata"]["name"]] = meta["name"]
        self.reconcile()
        self.loop.call_later(
            self.ready_after, self._becomes_ready, meta.get("namespace"), meta["name"]
        )

    def _becomes_ready(self, namespace: str | None, name: str) -> None:
        pod = self.double.get("v1/pods", namespace, name)
        if pod is None:
            return
        ip = next(self._ips)
        status = pod["status"]
        status.update(
            phase="Running",
            podIP=ip,
            podIPs=[{"ip": ip}],
            startTime=now_rfc3339(),
            conditions=[
                {"type": kind, "status": "True"}
                for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
        )
        for container in status.get("containerStatuses") or []:
            container.update(
                ready=True, started=True, state={"running": {"startedAt": now_rfc3339()}}
            )
        labels = pod["metadata"].setdefault("labels", {})
        if labels.get("ray.io/node-type") == "head":
            labels["ray.io/serve"] = "true"
        self.double.put(pod)
        self.reconcile()

    # -- the EndpointSlice controller --------------------------------------------------------

    def reconcile(self) -> None:
        """Bring every Service's existing EndpointSlice and Endpoints in line with its pods."""
        pods = self.double.live("v1/pods")
        slices = self.double.live("discovery.k8s.io/v1/endpointslices")
        for service in self.double.live("v1/services"):
            selector = service.get("spec", {}).get("selector") or {}
            if not selector:
                continue
            meta = service["metadata"]
            namespace, name = meta.get("namespace"), meta["name"]
            wanted = ",".join(f"{k}={v}" for k, v in selector.items())
            members = [
                p
                for p in pods
                if p["metadata"].get("namespace") == namespace
                and p.get("status", {}).get("podIP")
                and selector_matches(wanted, p["metadata"].get("labels") or {})
            ]
            ports = [
                {
                    "name": port.get("name", ""),
                    "port": port.get("targetPort", port["port"])
                    if isinstance(port.get("targetPort"), int)
                    else port["port"],
                    "protocol": port.get("protocol", "TCP"),
                }
                for port in service["spec"].get("ports") or []
            ]
            for endpoint_slice in slices:
                labels = endpoint_slice["metadata"].get("labels") or {}
                if (
                    endpoint_slice["metadata"].get("namespace") == namespace
                    and labels.get("kubernetes.io/service-name") == name
                ):
                    endpoint_slice["endpoints"] = [self._slice_endpoint(p) for p in members]
                    endpoint_slice["ports"] = ports
                    self.double.put(endpoint_slice)
            core = self.double.get("v1/endpoints", namespace, name)
            if core is not None:
                ready = [p for p in members if self._serving(p)]
                not_ready = [p for p in members if not self._serving(p)]
                subset: dict[str, Any] = {
                    "ports": [{k: v for k, v in p.items() if v != ""} for p in ports]
                }
                if ready:
                    subset["addresses"] = [self._address(p) for p in ready]
                if not_ready:
                    subset["notReadyAddresses"] = [self._address(p) for p in not_ready]
                core["subsets"] = [subset] if members else []
                self.double.put(core)
            self._count_serve_endpoints(namespace, name, members)

    def _serving(self, pod: dict[str, Any]) -> bool:
        return _ready(pod) and not pod["metadata"].get("deletionTimestamp")

    def _address(self, pod: dict[str, Any]) -> dict[str, Any]:
        meta = pod["metadata"]
        return {
            "ip": pod["status"]["podIP"],
            "nodeName": pod.get("spec", {}).get("nodeName", "kind-worker"),
            "targetRef": {
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
            },
        }

    def _slice_endpoint(self, pod: dict[str, Any]) -> dict[str, Any]:
        address = self._address(pod)
        terminating = bool(pod["metadata"].get("deletionTimestamp"))
        return {
            "addresses": [address["ip"]],
            "conditions": {
                "ready": self._serving(pod),
                "serving": _ready(pod),
                "terminating": terminating,
            },
            "nodeName": address["nodeName"],
            "targetRef": address["targetRef"],
        }

    def _count_serve_endpoints(
        self, namespace: str | None, service: str, members: list[dict[str, Any]]
    ) -> None:
        if not service.endswith("-serve-svc"):
            return
        rayservice = self.double.get(
            "ray.io/v1/rayservices", namespace, service[: -len("-serve-svc")]
        )
        if rayservice is None or "status" not in rayservice:
            return
        rayservice["status"]["numServeEndpoints"] = sum(1 for p in members if self._serving(p))
        self.double.put(rayservice)
