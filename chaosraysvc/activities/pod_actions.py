"""Actions that delete the RayService's pods and wait for it to recover.

::

    {"type": "action", "name": "delete-head-pod",
     "provider": {"type": "python", "module": "chaosraysvc.activities.pod_actions",
                  "func": "delete_head_pod", "arguments": {"timeout": 180}}}

Each delete action returns what it deleted and, when `wait_for_recovery` is true,
the recovery milestones: the replacement pod and the seconds from the deletion to
the new pod ready, the endpoints restored and the applications RUNNING. It also
marks these moments in the running traffic log, so the traffic statistics can be
split into phases.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaosraysvc import recovery
from chaosraysvc.activities.common import activity_errors, limits, target_for
from chaosraysvc.errors import (
    ChaosRaySvcError,
    NotFoundError,
    RefusedError,
)
from chaosraysvc.model import Pod
from chaosraysvc.targets.base import Target, pods_of_role
from chaosraysvc.traffic.registry import mark

__all__ = ["delete_head_pod", "delete_redis_pod", "delete_worker_pod", "wait_for_recovery"]
logger = logging.getLogger("chaostoolkit")


def setup_facts(target: Target) -> dict[str, Any]:
    """Return the set-up facts the traffic attribution needs, for the `fault` mark.

    `serve_endpoints` (pod names) and `head_in_serve_svc`, `gcs_storage_persistent` (when
    known): whether a failure may be blamed on the doctor's `head-in-serve-svc` or
    `gcs-storage-ephemeral` risk (`chaosraysvc.traffic.attribution`). A fact that cannot be
    read is left out, with a warning.
    """
    facts: dict[str, Any] = {}
    try:
        endpoints = target.serve_endpoints()
    except ChaosRaySvcError as exc:
        logger.warning("Serve endpoints unknown before the fault: %s", exc)
    else:
        facts["serve_endpoints"] = sorted(e.pod_name for e in endpoints)
        facts["head_in_serve_svc"] = any(e.role == "head" for e in endpoints)
    try:
        persistent = target.gcs_fault_tolerance().persistent
    except ChaosRaySvcError as exc:
        logger.warning("GCS storage unknown before the fault: %s", exc)
    else:
        if persistent is not None:
            facts["gcs_storage_persistent"] = persistent
    return facts


def refuse_without_gcs_ft(target: Target, what: str, can_allow: bool = True) -> None:
    """Raise `RefusedError` when GCS fault tolerance is off: `what` would lose Serve's state.

    `can_allow` adds the hint of the activity's `allow_without_gcs_ft` escape.
    """
    if target.gcs_fault_tolerance().enabled:
        return
    escape = ", or pass allow_without_gcs_ft=true to do it anyway" if can_allow else ""
    raise RefusedError(
        f"refusing to {what}: GCS fault tolerance is not enabled, so the Serve applications "
        f"would be lost with it. Enable gcsFaultToleranceOptions on the RayService{escape}"
    )


def running_head(target: Target, purpose: str) -> Pod:
    """Return the running head pod (`NotFoundError` naming `purpose` when there is none)."""
    heads = [p for p in pods_of_role(target, "head") if p.phase == "Running"]
    if not heads:
        raise NotFoundError(f"no running head pod to {purpose}: is the RayService up?")
    return heads[0]


def _delete(
    target: Target,
    pod: Pod,
    grace_period: int,
    await_recovery: bool,
    recovery_timeout: float,
    dry_run: bool,
) -> dict[str, Any]:
    """Delete `pod`, marking the fault in the traffic log; then wait for the milestones."""
    baseline = recovery.Baseline.capture(target)
    logger.info(
        "Deleting %s pod %s (grace %ss%s)",
        pod.role,
        pod.name,
        grace_period,
        ", dry run" if dry_run else "",
    )
    if not dry_run:
        facts = setup_facts(target)
        # The fault starts when the deletion is requested (Kubernetes' deletionTimestamp).
        mark("fault", pod=pod.name, role=pod.role, action=f"delete_{pod.role}_pod", **facts)
    deleted_at = time.time()
    try:
        target.delete_pod(pod, grace_period=grace_period, dry_run=dry_run)
    except Exception as exc:
        if not dry_run:
            mark("fault_not_injected", pod=pod.name, error=type(exc).__name__)
        raise
    result: dict[str, Any] = {
        "deleted": {"name": pod.name, "role": pod.role, "uid": pod.uid},
        "deleted_at": deleted_at,
        "grace_period": grace_period,
        "dry_run": dry_run,
        "target": target.kind,
        "before": {"endpoints": baseline.endpoints, "applications": sorted(baseline.applications)},
        "recovery": None,
    }
    if dry_run:
        return result
    if await_recovery:
        rec = recovery.wait_for_milestones(
            target, pod, deleted_at, baseline, recovery_timeout, mark=mark
        )
        result["recovery"] = rec.to_json()
    return result


def delete_head_pod(
    grace_period: int = 0,
    wait_for_recovery: bool = True,
    timeout: float = 180,
    allow_without_gcs_ft: bool = False,
    dry_run: bool = False,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Delete the RayService's head pod and wait for the service to recover.

    `grace_period` seconds are given to the pod (0: killed at once). With
    `wait_for_recovery`, waits up to `timeout` seconds for a new head pod to be ready,
    the serve endpoints restored and the applications RUNNING, and returns the time to
    each. Refuses (`ActivityFailed`) when GCS fault tolerance is not enabled, since the
    service would be lost with the head, unless `allow_without_gcs_ft` is true.
    """
    with activity_errors():
        grace_period, timeout = limits("delete_head_pod", grace_period, timeout)
    target = target_for(configuration, secrets)
    with activity_errors():
        if not allow_without_gcs_ft:
            refuse_without_gcs_ft(target, "delete the head pod")
        head = running_head(target, "delete")
        return _delete(target, head, grace_period, wait_for_recovery, timeout, dry_run)


def delete_worker_pod(
    name: str = "",
    grace_period: int = 0,
    wait_for_recovery: bool = True,
    timeout: float = 180,
    dry_run: bool = False,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Delete a worker pod (`name`, or a random running worker) and wait for recovery.

    Returns what was deleted and the recovery milestones, as `delete_head_pod` does.
    Raises `ActivityFailed` when `name` is not a worker pod of the RayService.
    """
    with activity_errors():
        grace_period, timeout = limits("delete_worker_pod", grace_period, timeout)
    target = target_for(configuration, secrets)
    with activity_errors():
        workers = [p for p in pods_of_role(target, "worker") if p.phase == "Running"]
        if name:
            chosen = [p for p in workers if p.name == name]
            if not chosen:
                known = ", ".join(p.name for p in workers) or "none"
                raise NotFoundError(f"no running worker pod {name!r} (workers: {known})")
            pod = chosen[0]
        elif workers:
            pod = random.choice(workers)
        else:
            raise NotFoundError("no running worker pod to delete: is the RayService up?")
        return _delete(target, pod, grace_period, wait_for_recovery, timeout, dry_run)


def delete_redis_pod(
    grace_period: int = 0,
    wait_for_recovery: bool = True,
    timeout: float = 180,
    dry_run: bool = False,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Delete the GCS fault-tolerance Redis pod and wait for the RayService to recover.

    Refuses when the cluster has no Redis (GCS FT disabled or an embedded backend).
    Without persistent storage, Redis comes back empty: the cluster restarts from
    scratch, which the recovery figures show.
    """
    with activity_errors():
        grace_period, timeout = limits("delete_redis_pod", grace_period, timeout)
    target = target_for(configuration, secrets)
    with activity_errors():
        ft = target.gcs_fault_tolerance()
        if ft.backend != "redis":
            raise RefusedError(
                f"refusing to delete a Redis pod: the GCS fault-tolerance backend is "
                f"{ft.backend!r}, so there is no Redis pod ({ft.source or 'no GCS FT settings'})"
            )
        redis: list[Pod] = [p for p in pods_of_role(target, "redis") if p.phase == "Running"]
        if not redis:
            raise NotFoundError(
                f"no running Redis pod found for {ft.redis_address or 'the GCS Redis'}: "
                "set redis_label_selector to select it"
            )
        return _delete(target, redis[0], grace_period, wait_for_recovery, timeout, dry_run)


def wait_for_recovery(
    timeout: float = 180, configuration: Configuration | None = None, secrets: Secrets | None = None
) -> dict[str, Any]:
    """Wait until every pod and endpoint is ready and every Serve application RUNNING.

    Meant for rollbacks. Raises `ActivityFailed` naming what was not ready after
    `timeout` seconds.
    """
    target = target_for(configuration, secrets)
    with activity_errors():
        return recovery.wait_until_healthy(target, timeout)
