"""Fail the GCS's Redis over: kill the primary a Sentinel names, follow the failover.

::

    {"type": "action", "name": "kill-redis-primary",
     "provider": {"type": "python", "module": "chaosraysvc.activities.failover_actions",
                  "func": "kill_redis_primary", "arguments": {"timeout": 180}}}

For a RayService whose GCS fault-tolerance address is a Redis Sentinel (Ray's GCS asks it
`INFO SENTINEL`, then connects to the primary `SENTINEL MASTERS` names): the action asks the
Sentinel for the primary, deletes that primary's pod, and follows the failover (a new primary
elected, the GCS connected to it, the old primary's pod back, endpoints and applications).
Every Redis command goes through `redis-cli` in the Sentinel's pod (`pods/exec`: the opt-in
`deploy/exec-role.yaml`), as the GCS's client (its password, read in the head).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaosraysvc import failover, recovery
from chaosraysvc.activities.common import activity_errors, limits, target_for
from chaosraysvc.activities.pod_actions import setup_facts
from chaosraysvc.errors import NotFoundError, RefusedError
from chaosraysvc.model.sentinel import Primary, parse_info_sentinel, parse_masters, replicas_up
from chaosraysvc.targets.base import Target
from chaosraysvc.traffic.registry import mark

__all__ = ["kill_redis_primary"]
logger = logging.getLogger("chaostoolkit")


def sentinel_primary_of(target: Target) -> Primary:
    """Return the one primary the GCS's Sentinel names, or refuse: no Redis, a plain Redis
    (no failover to test), several primaries (Ray's GCS refuses those too), no replica."""
    ft = target.gcs_fault_tolerance()
    if ft.backend != "redis" or not ft.redis_address:
        raise RefusedError(
            f"refusing to fail Redis over: the GCS fault-tolerance backend is {ft.backend!r}, "
            f"so there is no Redis ({ft.source or 'no GCS FT settings'})"
        )
    info = target.redis_command(["INFO", "SENTINEL"], timeout=5)
    if info is None or info.error:
        raise NotFoundError(
            f"Redis at {ft.redis_address} gave {info.text if info else 'no answer'!r} to INFO "
            "SENTINEL: is it up?"
        )
    if not parse_info_sentinel(info.lines):
        raise RefusedError(
            f"refusing to fail Redis over: {ft.redis_address} is a single Redis, not a Sentinel "
            "(INFO SENTINEL is empty), so there is nothing to fail over to; delete_redis_pod "
            "tests losing it"
        )
    reply = target.redis_command(["SENTINEL", "MASTERS"], timeout=5)
    primaries = parse_masters(reply.lines) if reply is not None and not reply.error else []
    if len(primaries) != 1:
        raise RefusedError(
            f"refusing to fail Redis over: the Sentinel at {ft.redis_address} names "
            f"{len(primaries)} primaries ({', '.join(p.name for p in primaries) or 'none'}); "
            "Ray's GCS needs exactly one"
        )
    primary = primaries[0]
    answer = target.redis_command(["SENTINEL", "REPLICAS", primary.name], timeout=5)
    up = replicas_up(answer.lines) if answer is not None and not answer.error else []
    if "down" in primary.flags or not up:
        raise RefusedError(
            f"refusing to fail Redis over: primary {primary.address} ({primary.name}) is "
            f"{primary.flags or 'unknown'} with {len(up)} replica(s) up of "
            f"{primary.replicas} known: no failover can happen; wait until the Sentinel "
            "sees a replica up"
        )
    return primary


def kill_redis_primary(
    grace_period: int = 0,
    timeout: float = 180,
    dry_run: bool = False,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Delete the pod of the Redis primary the GCS's Sentinel names and follow the failover.

    Asks the Sentinel behind the GCS fault-tolerance address for its one primary, finds the
    pod at that address (its IP or DNS name) and deletes it with `grace_period`. Then, for up
    to `timeout` seconds, records when the Sentinel names a new primary (`primary_elected`),
    when the new primary has a client from the head pod that stays connected, as the GCS does
    (`gcs_reconnected`), when the deleted
    pod's replacement is ready (`pod_ready`, a StatefulSet's pod of the same name) and when
    the endpoints and applications are back; a milestone not reached is left out. `dry_run`
    stops before the deletion. Refuses without a Redis backend, with a single Redis (not a
    Sentinel), with several primaries or none with a replica. On the kubernetes target only
    (the sandbox runs one Redis); needs `pods/exec` (deploy/exec-role.yaml).
    """
    with activity_errors():
        grace_period, timeout = limits("kill_redis_primary", grace_period, timeout)
    target = target_for(configuration, secrets)
    with activity_errors():
        primary = sentinel_primary_of(target)
        pod = target.find_pod(primary.host)
        if pod is None:
            raise NotFoundError(
                f"the Sentinel names primary {primary.address} ({primary.name}) but no pod of "
                "the RayService's namespace is at that address: is Redis in another namespace?"
            )
        result: dict[str, Any] = {
            "target": target.kind,
            "dry_run": dry_run,
            "primary": {"name": primary.name, "address": primary.address, "pod": pod.name},
            "replicas": primary.replicas,
            "sentinels": primary.sentinels,
            "grace_period": grace_period,
            "recovery": None,
        }
        if dry_run:
            return result
        baseline = recovery.Baseline.capture(target)
        mark("fault", pod=pod.name, role="redis", action="kill_redis_primary",
             **setup_facts(target))  # fmt: skip
        deleted_at = time.time()
        try:
            target.delete_redis_primary(pod, primary.host, grace_period=grace_period)
        except Exception as exc:
            mark("fault_not_injected", pod=pod.name, error=type(exc).__name__)
            raise
        logger.info("Deleted Redis primary %s (%s); following the failover", pod.name,
                    primary.address)  # fmt: skip
        found, new = failover.follow_failover(
            target, primary, pod, deleted_at, baseline, timeout, mark=mark
        )
        missing = [m for m in failover.FAILOVER_MILESTONES if m not in found.milestones]
        if missing:
            logger.warning("Failover: not reached within %g s: %s", timeout, ", ".join(missing))
        return result | {
            "deleted": {"name": pod.name, "role": "redis", "uid": pod.uid},
            "deleted_at": deleted_at,
            "new_primary": new,
            "missing": missing,
            "recovery": found.to_json(),
        }
