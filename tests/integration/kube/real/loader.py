"""Load the seed's objects into a real API server, the way KubeRay and a kubelet would leave them.

Objects are created in dependency order in a namespace of the test's own; each owner
reference is rewritten to the UID the server gave the owner (an owner that is not seeded is
dropped, or the garbage collector would delete the dependent); status goes through the status
subresource, as a kubelet (pods) and KubeRay (RayService, RayCluster) write it. EndpointSlices
and Endpoints are not seeded: the real controllers build them from the pods.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from .. import seed

ORDER = ("RayService", "RayCluster", "ConfigMap", "Secret", "Service", "Pod")
SERVER_SET = ("uid", "resourceVersion", "creationTimestamp", "generation")


def in_namespace(objects: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """Return `objects` moved from the seed's namespace to `namespace` (names in DNS too)."""
    text = json.dumps(objects)
    text = text.replace(f'"namespace": "{seed.NAMESPACE}"', f'"namespace": "{namespace}"')
    text = text.replace(f".{seed.NAMESPACE}.svc", f".{namespace}.svc")
    loaded: list[dict[str, Any]] = json.loads(text)
    return loaded


@dataclass
class Loaded:
    """What was created: seed UID -> server UID, and each object by (kind, name)."""

    uids: dict[str, str] = field(default_factory=dict)
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


class Loader:
    """Create seed objects in `namespace` of the API server behind `api`."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.namespace = namespace
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.loaded = Loaded()

    def load(self, objects: list[dict[str, Any]]) -> Loaded:
        """Create every object (EndpointSlices/Endpoints skipped) and write its status."""
        wanted = [o for o in in_namespace(objects, self.namespace) if o["kind"] in ORDER]
        for kind in ORDER:
            for body in (o for o in wanted if o["kind"] == kind):
                self.create(body)
        return self.loaded

    def create(self, original: dict[str, Any]) -> dict[str, Any]:
        """Create one object as seeded; return it as the server stored it."""
        body = copy.deepcopy(original)
        meta = body["metadata"]
        seed_uid = meta.get("uid", "")
        for key in SERVER_SET:
            meta.pop(key, None)
        meta.pop("generateName", None)
        owners = [
            {**ref, "uid": self.loaded.uids[ref["uid"]]}
            for ref in meta.get("ownerReferences", [])
            if ref["uid"] in self.loaded.uids
        ]
        if owners:
            meta["ownerReferences"] = owners
        else:
            meta.pop("ownerReferences", None)
        status = body.pop("status", None)
        kind = body["kind"]
        if kind == "Service":
            body["spec"].pop("clusterIPs", None)  # cluster-wide: each namespace gets its own
            body["spec"].pop("clusterIP", None)
        created = self._create(kind, body)
        if status and kind in ("Pod", "RayService", "RayCluster"):
            created = self.write_status(kind, meta["name"], status)
        if seed_uid:
            self.loaded.uids[seed_uid] = created["metadata"]["uid"]
        self.loaded.objects[(kind, meta["name"])] = created
        return created

    def _create(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        ns = self.namespace
        create: dict[str, Callable[[], Any]] = {
            "RayService": lambda: self.custom.create_namespaced_custom_object(
                "ray.io", "v1", ns, "rayservices", body
            ),
            "RayCluster": lambda: self.custom.create_namespaced_custom_object(
                "ray.io", "v1", ns, "rayclusters", body
            ),
            "ConfigMap": lambda: self.core.create_namespaced_config_map(ns, body),
            "Secret": lambda: self.core.create_namespaced_secret(ns, body),
            "Service": lambda: self.core.create_namespaced_service(ns, body),
            "Pod": lambda: self.core.create_namespaced_pod(ns, body),
        }
        result = create[kind]()
        if isinstance(result, dict):
            return result
        plain: dict[str, Any] = self.core.api_client.sanitize_for_serialization(result)
        return plain

    def write_status(self, kind: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """Merge `status` into the object's status subresource."""
        ns = self.namespace
        if kind == "Pod":
            pod = self.core.patch_namespaced_pod_status(name, ns, {"status": status})
            plain: dict[str, Any] = self.core.api_client.sanitize_for_serialization(pod)
            return plain
        plural = {"RayService": "rayservices", "RayCluster": "rayclusters"}[kind]
        result: dict[str, Any] = self.custom.patch_namespaced_custom_object_status(
            "ray.io", "v1", ns, plural, name, {"status": status}
        )
        return result
