"""A stand-in for the endpointslice controller, for the API double's seed.

Every Service's seeded EndpointSlice (and core Endpoints) is filled from its selected pods
(ready / serving / terminating), and the RayService's `status.numServeEndpoints` follows the
serve Service, once, when the double starts. Nothing replaces a deleted pod: that is the real
operator's job, proven on the real node (`real/test_real_node.py`).
"""

from __future__ import annotations

from typing import Any

from .apidouble import ApiDouble, selector_matches


def _ready(pod: dict[str, Any]) -> bool:
    for condition in pod.get("status", {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


class EndpointsStandIn:
    """Fills the seeded EndpointSlices and Endpoints from the pods, as the controller would."""

    def __init__(self, double: ApiDouble) -> None:
        self.double = double

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
