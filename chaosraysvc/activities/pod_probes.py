"""Probes of the RayService's pods and its GCS fault tolerance.

::

    {"type": "probe", "name": "head-ready",
     "provider": {"type": "python", "module": "chaosraysvc.activities.pod_probes",
                  "func": "head_pod_ready"},
     "tolerance": true}
"""

from __future__ import annotations

import logging

from chaoslib.types import Configuration, Secrets

from chaosraysvc.activities.common import activity_errors, target_for
from chaosraysvc.config import number
from chaosraysvc.targets.base import pods_of_role

__all__ = [
    "gcs_fault_tolerance_enabled",
    "head_pod_ready",
    "redis_storage_persistent",
    "restarts_only_in_role",
]
logger = logging.getLogger("chaostoolkit")


def head_pod_ready(
    configuration: Configuration | None = None, secrets: Secrets | None = None
) -> bool:
    """Tell whether the RayService's head pod exists and is ready."""
    target = target_for(configuration, secrets)
    with activity_errors():
        heads = pods_of_role(target, "head")
    return any(p.ready and p.phase == "Running" for p in heads)


def gcs_fault_tolerance_enabled(
    configuration: Configuration | None = None, secrets: Secrets | None = None
) -> bool:
    """Tell whether the cluster's GCS survives a head loss (Redis or embedded backend)."""
    target = target_for(configuration, secrets)
    with activity_errors():
        return target.gcs_fault_tolerance().enabled


def redis_storage_persistent(
    configuration: Configuration | None = None, secrets: Secrets | None = None
) -> bool:
    """Tell whether the GCS Redis keeps its data when its pod is deleted (a volume at its dir).

    False when there is no Redis, when its data dir has no volume (the KubeRay HA
    sample's case: deleting the Redis pod wipes the GCS state), or when unknown.
    """
    target = target_for(configuration, secrets)
    with activity_errors():
        ft = target.gcs_fault_tolerance()
    return ft.backend == "redis" and ft.persistent is True


def restarts_only_in_role(
    role: str = "head",
    max_restarts: int = 1,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> bool:
    """Tell whether no pod of the RayCluster restarted except those of `role`.

    KubeRay's HA test asserts, after killing the GCS in the head, that the same head pod
    restarted exactly once and nothing else restarted: this is that check as a probe of the
    steady-state hypothesis. Restarts are counted from the first time this process saw each
    pod (by uid), which is the hypothesis' check before the method: True when no head or
    worker pod outside `role` restarted since, and those of `role` at most `max_restarts`
    times. A pod first seen later (a replacement) counts from 0. Redis pods are not part of the
    RayCluster and are not counted.
    """
    with activity_errors():
        max_restarts = int(
            number(max_restarts, "restarts_only_in_role `max_restarts`", integer=True)
        )
    target = target_for(configuration, secrets)
    with activity_errors():
        pods = [p for p in target.pods() if p.role in ("head", "worker")]
    ok = True
    for pod in pods:
        first = _FIRST_SEEN.setdefault(pod.uid or pod.name, pod.restarts)
        since = pod.restarts - first
        allowed = max_restarts if pod.role == role else 0
        if since > allowed:
            logger.info("pod %s (%s) restarted %d time(s) since first seen (allowed %d)",
                        pod.name, pod.role, since, allowed)  # fmt: skip
            ok = False
    return ok


_FIRST_SEEN: dict[str, int] = {}  # pod uid -> restartCount when this process first saw it
