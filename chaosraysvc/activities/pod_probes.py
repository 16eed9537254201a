"""Probes of the RayService's pods and its GCS fault tolerance.

::

    {"type": "probe", "name": "head-ready",
     "provider": {"type": "python", "module": "chaosraysvc.activities.pod_probes",
                  "func": "head_pod_ready"},
     "tolerance": true}
"""

from __future__ import annotations

from chaoslib.types import Configuration, Secrets

from chaosraysvc.activities.common import activity_errors, target_for
from chaosraysvc.targets.base import pods_of_role

__all__ = ["gcs_fault_tolerance_enabled", "head_pod_ready", "redis_storage_persistent"]


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
