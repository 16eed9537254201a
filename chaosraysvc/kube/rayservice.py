"""What a RayService object (ray.io/v1) says: its active RayCluster and its GCS fault tolerance.

KubeRay records the cluster serving traffic in `status.activeServiceStatus.rayClusterName`.
GCS fault tolerance is set either by `spec.rayClusterConfig.gcsFaultToleranceOptions`
(`redisAddress`, or `backend: rocksdb` for the embedded store) or, in older set-ups, by the
annotation `ray.io/ft-enabled: "true"` with `RAY_REDIS_ADDRESS` in the head container's env.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from chaosraysvc.errors import TargetNotReadyError

__all__ = [
    "FT_ANNOTATION",
    "GcsFtConfig",
    "active_cluster_name",
    "gcs_ft_config",
    "head_container",
    "redis_service_ref",
]

FT_ANNOTATION = "ray.io/ft-enabled"
OPTIONS_PATH = "spec.rayClusterConfig.gcsFaultToleranceOptions"
EMBEDDED_BACKENDS = ("rocksdb", "embedded")


@dataclass(frozen=True)
class GcsFtConfig:
    """GCS fault tolerance as configured on the RayService (before looking at any pod)."""

    enabled: bool
    backend: Literal["redis", "embedded", "none"]
    redis_address: str = ""
    source: str = ""


def _dig(obj: Mapping[str, Any], *keys: str) -> Any:
    value: Any = obj
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def active_cluster_name(rayservice: Mapping[str, Any]) -> str:
    """Return the name of the RayService's active RayCluster.

    Raises `TargetNotReadyError` while KubeRay has not made any cluster active yet.
    """
    name = _dig(rayservice, "status", "activeServiceStatus", "rayClusterName")
    if not name:
        meta = rayservice.get("metadata") or {}
        pending = _dig(rayservice, "status", "pendingServiceStatus", "rayClusterName")
        extra = f" (RayCluster '{pending}' is still being prepared)" if pending else ""
        raise TargetNotReadyError(
            f"RayService '{meta.get('name', '?')}' in namespace '{meta.get('namespace', '?')}' "
            f"has no active RayCluster yet (status.activeServiceStatus.rayClusterName is "
            f"empty){extra}: wait until `kubectl get rayservice` shows it ready, then run again"
        )
    return str(name)


def head_container(rayservice: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the head pod template's Ray container (the first one), or {}."""
    containers = _dig(
        rayservice, "spec", "rayClusterConfig", "headGroupSpec", "template", "spec", "containers"
    )
    if isinstance(containers, list) and containers and isinstance(containers[0], Mapping):
        return containers[0]
    return {}


def _env_value(container: Mapping[str, Any], name: str) -> str:
    for item in container.get("env") or []:
        if isinstance(item, Mapping) and item.get("name") == name:
            return str(item.get("value") or "")
    return ""


def gcs_ft_config(rayservice: Mapping[str, Any]) -> GcsFtConfig:
    """Return how the RayService configures GCS fault tolerance (`source` names the field)."""
    options = _dig(rayservice, "spec", "rayClusterConfig", "gcsFaultToleranceOptions")
    if isinstance(options, Mapping):
        backend = str(options.get("backend") or "redis").lower()
        if backend in EMBEDDED_BACKENDS:
            return GcsFtConfig(True, "embedded", "", f"{OPTIONS_PATH}.backend={backend}")
        address = str(options.get("redisAddress") or "")
        if address:
            return GcsFtConfig(True, "redis", address, f"{OPTIONS_PATH}.redisAddress")
        address = _env_value(head_container(rayservice), "RAY_REDIS_ADDRESS")
        return GcsFtConfig(True, "redis", address, f"{OPTIONS_PATH} + head env RAY_REDIS_ADDRESS")
    annotations = _dig(rayservice, "metadata", "annotations") or {}
    if str(annotations.get(FT_ANNOTATION, "")).lower() == "true":
        address = _env_value(head_container(rayservice), "RAY_REDIS_ADDRESS")
        return GcsFtConfig(
            True, "redis", address, f"annotation {FT_ANNOTATION} + head env RAY_REDIS_ADDRESS"
        )
    return GcsFtConfig(False, "none", "", "no gcsFaultToleranceOptions nor ft-enabled annotation")


def redis_service_ref(address: str, namespace: str) -> tuple[str, str] | None:
    """Return (Service name, namespace) that a Redis `address` names inside the cluster.

    "redis:6379" names Service "redis" in `namespace`; "redis.ns.svc" and
    "redis.ns.svc.cluster.local" name Service "redis" in "ns". IP addresses and other
    dotted names point outside the cluster's Services: None.
    """
    text = address.strip()
    if not text:
        return None
    if "://" not in text:
        text = f"redis://{text}"
    try:
        host = urlsplit(text).hostname or ""
    except ValueError:
        return None
    if not host:
        return None
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    labels = host.split(".")
    if len(labels) == 1:
        return labels[0], namespace
    if len(labels) >= 3 and labels[2] == "svc":
        return labels[0], labels[1]
    return None
