"""The Redis pod that keeps the GCS state, and whether that state survives the pod.

The pod is found from the GCS fault-tolerance address (host of `redisAddress` -> its Service
-> the Service's selector -> pods), or from an explicit `redis_label_selector`.

Its data survives a deletion only if a lasting volume (a PersistentVolumeClaim, hostPath,
or network volume) is mounted at Redis' data directory. The KubeRay HA sample's Redis has
`dir /data` in its redis.conf but nothing mounted at /data: deleting it loses all GCS data.
"""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Sequence
from typing import Any

from kubernetes import client

from chaosraysvc.kube.client import KubeApi
from chaosraysvc.kube.pods import label_selector
from chaosraysvc.kube.rayservice import GcsFtConfig, redis_service_ref

__all__ = [
    "GCS_STORAGE_PATH",
    "data_dir",
    "embedded_storage_persistent",
    "find_redis_pods",
    "redis_container",
    "redis_labels",
    "runs_sentinel",
    "storage_persistent",
    "volume_keeps_data",
]

logger = logging.getLogger("chaostoolkit")

GCS_STORAGE_PATH = "/data/gcs"  # where KubeRay mounts the embedded (rocksdb) GCS store

# Image (last path part, no tag) -> the data directory it uses by default.
_IMAGE_DATA_DIRS = {
    "redis": "/data",
    "redis-stack": "/data",
    "redis-stack-server": "/data",
    "valkey": "/data",
}
_BITNAMI_DATA_DIR = "/bitnami/redis/data"

# Volume sources whose data is gone when the pod is deleted (or that are read-only inputs).
_PASSING_SOURCES = {
    "empty_dir",
    "ephemeral",
    "config_map",
    "secret",
    "downward_api",
    "projected",
    "git_repo",
    "image",
}


def find_redis_pods(
    api: KubeApi, namespace: str, ft: GcsFtConfig, explicit_selector: str = ""
) -> list[client.V1Pod]:
    """Return the Redis pods behind the GCS fault-tolerance address, or `explicit_selector`'s.

    Returns [] when there is no Redis (fault tolerance off, embedded store) or when the
    address points outside the cluster's Services (an IP or an external host name).
    Raises `NotFoundError` when the address names a Service that does not exist.
    """
    if explicit_selector:
        return api.list_pods(namespace, explicit_selector)
    if ft.backend != "redis" or not ft.redis_address:
        return []
    ref = redis_service_ref(ft.redis_address, namespace)
    if ref is None:
        logger.info(
            "Redis address %r is outside the cluster's Services: no Redis pod to act on "
            "(set redis_label_selector to name its pods)",
            ft.redis_address,
        )
        return []
    name, service_namespace = ref
    service = api.get_service(
        service_namespace,
        name,
        purpose=(
            f"named by the GCS fault-tolerance address '{ft.redis_address}' ({ft.source}); "
            "set redis_label_selector to find the Redis pods by their labels instead"
        ),
    )
    selector = dict((service.spec and service.spec.selector) or {})
    if not selector:
        logger.info("Service %s/%s has no selector: no Redis pod to act on", namespace, name)
        return []
    return api.list_pods(service_namespace, label_selector(selector))


# Labels a controller sets per revision or per pod: never part of what selects "the Redis pods".
_PER_REVISION_LABELS = {
    "pod-template-hash",
    "controller-revision-hash",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
}
_EQUALITY = re.compile(r"^\s*([A-Za-z0-9./_-]+)\s*==?\s*([A-Za-z0-9._-]*)\s*$")


def redis_labels(
    api: KubeApi,
    namespace: str,
    ft: GcsFtConfig,
    explicit_selector: str,
    pods: Sequence[client.V1Pod],
) -> dict[str, str]:
    """Return labels that select the Redis `pods` (and no pod replaced later would lack).

    The equality terms of `explicit_selector` when it has some, else the selector of the
    Service the GCS fault-tolerance address names, else the labels all `pods` share but the
    per-revision ones (pod-template-hash, ...). {} when nothing selects them.
    """
    if explicit_selector:
        terms = [_EQUALITY.match(term) for term in explicit_selector.split(",")]
        found = {m.group(1): m.group(2) for m in terms if m}
        if found:
            return found
    ref = redis_service_ref(ft.redis_address, namespace) if ft.redis_address else None
    if ref is not None and not explicit_selector:
        service = api.get_service(ref[1], ref[0], purpose="the Service in front of Redis")
        selector = dict((service.spec and service.spec.selector) or {})
        if selector:
            return {str(k): str(v) for k, v in selector.items()}
    shared: dict[str, str] | None = None
    for pod in pods:
        labels = {
            str(k): str(v)
            for k, v in ((pod.metadata and pod.metadata.labels) or {}).items()
            if k not in _PER_REVISION_LABELS
        }
        if shared is None:
            shared = labels
        else:
            shared = {k: v for k, v in shared.items() if labels.get(k) == v}
    return shared or {}


def redis_container(pod: client.V1Pod) -> client.V1Container | None:
    """Return the pod's Redis container: named "redis", else running a Redis image."""
    containers = list((pod.spec and pod.spec.containers) or [])
    for container in containers:
        if container.name == "redis":
            return container
    for container in containers:
        if "redis" in str(container.image or "") or "valkey" in str(container.image or ""):
            return container
    return containers[0] if len(containers) == 1 else None


def data_dir(container: client.V1Container) -> str | None:
    """Return Redis' data directory: `--dir` on its command line, else its image's default.

    Returns None when it cannot be told.
    """
    words = [str(w) for w in (container.command or []) + (container.args or [])]
    line = " ".join(words)
    try:
        tokens = shlex.split(line)
    except ValueError:
        tokens = line.split()
    for index, token in enumerate(tokens):
        if token == "--dir" and index + 1 < len(tokens):
            return tokens[index + 1]
        if token.startswith("--dir="):
            return token.split("=", 1)[1]
    if container.working_dir:
        return str(container.working_dir)
    image = str(container.image or "").split("@", 1)[0]
    path = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    if path.startswith("bitnami/") or "/bitnami/" in path:
        return _BITNAMI_DATA_DIR
    return _IMAGE_DATA_DIRS.get(path.rsplit("/", 1)[-1])


def _covers(mount_path: str, directory: str) -> bool:
    mount = mount_path.rstrip("/") or "/"
    target = directory.rstrip("/") or "/"
    return target == mount or target.startswith(mount if mount == "/" else mount + "/")


def volume_keeps_data(volume: client.V1Volume) -> bool:
    """Return whether `volume`'s data outlives the pod (PVC, hostPath, network volumes)."""
    source: dict[str, Any] = {
        key: value for key, value in volume.to_dict().items() if key != "name" and value
    }
    if not source:
        return False
    return not set(source) <= _PASSING_SOURCES


def _mount_keeps(pod: client.V1Pod, container: client.V1Container, directory: str) -> bool:
    mounts = [m for m in container.volume_mounts or [] if _covers(str(m.mount_path), directory)]
    if not mounts:
        return False
    mount = max(mounts, key=lambda m: len(str(m.mount_path)))
    volumes = {v.name: v for v in (pod.spec and pod.spec.volumes) or []}
    volume = volumes.get(mount.name)
    return volume is not None and volume_keeps_data(volume)


def storage_persistent(pod: client.V1Pod) -> bool | None:
    """Return whether Redis' data in `pod` survives the pod's deletion (None: cannot tell)."""
    container = redis_container(pod)
    if container is None:
        return None
    directory = data_dir(container)
    if directory is None:
        return None
    return _mount_keeps(pod, container, directory)


def embedded_storage_persistent(head: client.V1Pod) -> bool | None:
    """Return whether the head's embedded GCS store outlives the head pod (None: cannot tell)."""
    containers = list((head.spec and head.spec.containers) or [])
    if not containers:
        return None
    container = containers[0]
    directory = GCS_STORAGE_PATH
    for item in container.env or []:
        if item.name == "RAY_GCS_STORAGE_PATH" and item.value:
            directory = str(item.value)
    return _mount_keeps(head, container, directory)


def runs_sentinel(pod: client.V1Pod) -> str:
    """Return how `pod` shows it runs a Redis Sentinel ("" when it does not): `--sentinel` or
    `redis-sentinel` on a container's command line, or a Sentinel image."""
    for container in (pod.spec and pod.spec.containers) or []:
        words = [str(w) for w in (container.command or []) + (container.args or [])]
        line = " ".join(words)
        for word in ("--sentinel", "redis-sentinel"):
            if word in line:
                return f"container '{container.name}' runs `... {word}`"
        if "sentinel" in str(container.image or "").rsplit("/", 1)[-1]:
            return f"container '{container.name}' runs image {container.image}"
    return ""
