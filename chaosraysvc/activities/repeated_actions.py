"""Repeated and multi-pod kills: several pods at once, and several rounds.

::

    {"type": "action", "name": "delete-two-workers-three-times",
     "provider": {"type": "python", "module": "chaosraysvc.activities.repeated_actions",
                  "func": "delete_pods",
                  "arguments": {"role": "worker", "count": 2, "interval": 0, "repeat": 3}}}

Each round deletes `count` running pods of one role (`interval` seconds apart) and, with
`wait_for_recovery`, waits until every one of them has a ready replacement and the serve
endpoints and applications are back as they were before the round; the recovery milestones
are recorded per kill (each replacement pod is claimed by one kill only).
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaosraysvc import recovery
from chaosraysvc.activities.common import activity_errors, limits, target_for
from chaosraysvc.activities.pod_actions import refuse_without_gcs_ft, setup_facts
from chaosraysvc.config import number
from chaosraysvc.errors import ConfigurationError, NotFoundError
from chaosraysvc.model import Pod, Role
from chaosraysvc.targets.base import Target, pods_of_role
from chaosraysvc.traffic.registry import mark

__all__ = ["delete_pods"]
logger = logging.getLogger("chaostoolkit")
ROLES: tuple[Role, ...] = ("head", "worker", "redis")


def _check(
    role: str, count: Any, interval: Any, repeat: Any, grace: Any, timeout: Any
) -> tuple[Role, int, float, int, int, float]:
    """Return the arguments as numbers, checked; else `ConfigurationError` naming each problem."""
    n = int(number(count, "delete_pods `count`", integer=True))
    gap = number(interval, "delete_pods `interval`")
    rounds = int(number(repeat, "delete_pods `repeat`", integer=True))
    grace_s, wait = limits("delete_pods", grace, timeout)
    problems = []
    if role not in ROLES:
        problems.append(f"role must be one of {', '.join(ROLES)} (got {role!r})")
    if n < 1:
        problems.append(f"count must be >= 1 (got {count})")
    if role in ("head", "redis") and n > 1:
        problems.append(f"a RayService has one {role} pod: count must be 1 (got {count})")
    if gap < 0:
        problems.append(f"interval must be >= 0 seconds (got {interval})")
    if rounds < 1:
        problems.append(f"repeat must be >= 1 (got {repeat})")
    if problems:
        raise ConfigurationError("delete_pods: " + "; ".join(problems))
    return next(r for r in ROLES if r == role), n, gap, rounds, grace_s, wait


def _pick(target: Target, role: Role, count: int) -> list[Pod]:
    running = [p for p in pods_of_role(target, role) if p.phase == "Running"]
    if len(running) < count:
        raise NotFoundError(
            f"delete_pods: {count} running {role} pod(s) wanted, {len(running)} found "
            f"({', '.join(p.name for p in running) or 'none'})"
        )
    return random.sample(running, count) if role == "worker" else running[:count]


def _round(
    target: Target, pods: list[Pod], interval: float, grace: int, await_it: bool, timeout: float
) -> list[dict[str, Any]]:
    """Delete `pods` `interval` s apart; then wait for each one's milestones."""
    baseline = recovery.Baseline.capture(target)
    kills: list[dict[str, Any]] = []
    for i, pod in enumerate(pods):
        if i and interval:
            time.sleep(interval)
        mark("fault", pod=pod.name, role=pod.role, action="delete_pods", **setup_facts(target))
        deleted_at = time.time()
        try:
            target.delete_pod(pod, grace_period=grace)
        except Exception as exc:
            mark("fault_not_injected", pod=pod.name, error=type(exc).__name__)
            raise
        kills.append(
            {
                "deleted": {"name": pod.name, "role": pod.role, "uid": pod.uid},
                "deleted_at": deleted_at,
                "grace_period": grace,
                "dry_run": False,
                "target": target.kind,
                "before": {
                    "endpoints": baseline.endpoints,
                    "applications": sorted(baseline.applications),
                },
                "recovery": None,
            }
        )
    if not await_it:
        return kills
    deadline = time.monotonic() + timeout
    claimed: set[str] = set()
    for kill, pod in zip(kills, pods, strict=True):
        # Replacements already claimed by an earlier kill do not count for this one.
        own = recovery.Baseline(baseline.endpoints, baseline.applications, baseline.pods | claimed)
        left = max(deadline - time.monotonic(), 1.0)
        rec = recovery.wait_for_milestones(target, pod, kill["deleted_at"], own, left, mark=mark)
        claimed.add(rec.new_pod)
        kill["recovery"] = rec.to_json()
    return kills


def delete_pods(
    role: str = "worker",
    count: int = 1,
    interval: float = 0,
    repeat: int = 1,
    grace_period: int = 0,
    wait_for_recovery: bool = True,
    timeout: float = 180,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Delete `count` pods of `role`, `interval` s apart, in `repeat` rounds; wait for each.

    `role` is "worker" (random running workers), "head" or "redis" (count 1). With
    `wait_for_recovery`, each round waits up to `timeout` seconds for every deleted pod's
    replacement, the serve endpoints and the applications before the next round starts;
    without it, rounds are `interval` seconds apart. Returns every kill with its recovery
    milestones, as `delete_worker_pod` returns one. Raises `ActivityFailed` for bad
    arguments, too few running pods, a head or Redis kill without GCS fault tolerance
    (refused), or a recovery that did not come in time.
    """
    checked, count, interval, repeat, grace_period, timeout = _check(
        role, count, interval, repeat, grace_period, timeout
    )
    target = target_for(configuration, secrets)
    with activity_errors():
        if checked == "head":
            refuse_without_gcs_ft(target, "delete the head pod", can_allow=False)
        rounds = []
        for n in range(repeat):
            if n and not wait_for_recovery and interval:
                time.sleep(interval)
            pods = _pick(target, checked, count)
            logger.info("delete_pods round %d/%d: %s", n + 1, repeat, [p.name for p in pods])
            rounds.append(_round(target, pods, interval, grace_period, wait_for_recovery, timeout))
        kills = [kill for r in rounds for kill in r]
        return {
            "role": checked,
            "count": count,
            "repeat": repeat,
            "interval": interval,
            "target": target.kind,
            "kills": kills,
            "recovered": wait_for_recovery
            and all(k["recovery"] and k["recovery"]["recovered"] for k in kills),
        }
