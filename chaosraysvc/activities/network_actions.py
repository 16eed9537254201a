"""Actions that cut the RayCluster off from its GCS Redis with NetworkPolicies, and heal it.

::

    {"type": "action", "name": "partition-redis",
     "provider": {"type": "python", "module": "chaosraysvc.activities.network_actions",
                  "func": "partition_redis", "arguments": {"timeout": 30}}}
    ...
    "rollbacks": [{"type": "action", "name": "heal-redis-partition",
                   "provider": {"type": "python",
                                "module": "chaosraysvc.activities.network_actions",
                                "func": "heal_redis_partition"}}]

On Kubernetes `partition_redis` creates two NetworkPolicies (`chaosraysvc.kube.networkpolicy`):
the active RayCluster's pods may not reach the Redis pods behind the GCS fault-tolerance
address, and the Redis pods admit every pod but those. It needs `create` (and the rollback
`delete`) on `networkpolicies`, which chaosraysvc's Role does not grant: apply the opt-in
`deploy/networkpolicy-role.yaml` and `deploy/networkpolicy-rolebinding.yaml`; and `pods/exec`
(`deploy/exec-role.yaml`) to check from the head that the cut took effect
(`chaosraysvc.partition`). The sandbox refuses it: there is no network between its processes.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaosraysvc import partition
from chaosraysvc.activities.common import activity_errors, limits, target_for
from chaosraysvc.activities.pod_actions import running_head, setup_facts
from chaosraysvc.config import number
from chaosraysvc.errors import (
    ChaosRaySvcError,
    ConfigurationError,
    FaultNotEffectiveError,
    NotFoundError,
    RefusedError,
)
from chaosraysvc.model import Pod
from chaosraysvc.targets.base import Target, pods_of_role
from chaosraysvc.traffic.registry import mark

__all__ = ["heal_redis_partition", "partition_redis"]
logger = logging.getLogger("chaostoolkit")


def _endpoint(target: Target) -> tuple[str, str, int]:
    """Return the GCS's Redis address and its host and port (refusing without Redis)."""
    ft = target.gcs_fault_tolerance()
    if ft.backend != "redis" or not ft.redis_address:
        raise RefusedError(
            f"refusing to cut the Ray pods off from Redis: the GCS fault-tolerance backend is "
            f"{ft.backend!r}, so there is no Redis ({ft.source or 'no GCS FT settings'})"
        )
    try:
        host, port = partition.redis_endpoint(ft.redis_address)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
    return ft.redis_address, host, port


def partition_redis(
    timeout: float = 30,
    established_window: float = 3,
    dry_run: bool = False,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Cut the RayCluster's pods off from the GCS Redis with NetworkPolicies; check the cut.

    Creates a policy on the active RayCluster's pods allowing egress to anything but the
    Redis pods, and one on the Redis pods allowing ingress from any pod but the RayCluster's.
    Then checks from the head pod that it took effect: a new connection to Redis must fail
    within `timeout` seconds, else the policies are deleted again and `ActivityFailed` says
    the cluster does not enforce NetworkPolicy. A connection opened before the policies is
    watched for `established_window` seconds more: the result says whether it was cut too or
    kept (most network plugins keep established flows: then the GCS's own connection to
    Redis goes on, and the GCS sees the partition only when it reconnects). `dry_run` has
    the API server validate the policies and stops there. Returns the policies, the Redis
    pods, when the cut was seen to hold and what the established connection saw. Needs
    `pods/exec` (deploy/exec-role.yaml) and `networkpolicies` create and delete
    (deploy/networkpolicy-role.yaml); refused on the sandbox.
    """
    with activity_errors():
        _, timeout = limits("partition_redis", 0, timeout)
        established_window = number(established_window, "partition_redis `established_window`")
        if established_window <= 0:
            raise ConfigurationError(
                f"partition_redis: established_window must be > 0 (got {established_window:g})"
            )
    target = target_for(configuration, secrets)
    with activity_errors():
        address, host, port = _endpoint(target)
        # The API server validates both policies (and the account's right to create them)
        # before anything changes; the sandbox refuses here.
        planned = target.partition_redis(dry_run=True)
        if dry_run:
            return {
                "dry_run": True,
                "target": target.kind,
                "cluster": planned.cluster,
                "policies": list(planned.policies),
                "redis_pods": list(planned.redis_pods),
                "redis_address": address,
            }
        redis = [p for p in pods_of_role(target, "redis") if p.phase == "Running"]
        if not redis:
            raise NotFoundError(
                f"no running Redis pod behind the GCS fault-tolerance address {address!r} "
                "to cut off: is it up? (set redis_label_selector to name its pods)"
            )
        head = running_head(target, "check the partition from")
        hold_for = timeout + established_window + 30
        held = partition.hold(target, head, host, port, hold_for)
        facts = setup_facts(target)
        mark("fault", pod=redis[0].name, role="redis", action="partition_redis", **facts)
        partitioned_at = time.time()
        try:
            made = target.partition_redis()
        except Exception as exc:
            mark("fault_not_injected", pod=redis[0].name, error=type(exc).__name__)
            partition.release(target, held)
            raise
        new = partition.wait_new_connection(target, head, host, port, "fail", timeout)
        if not new.error:
            _undo(target, redis[0], held)
            raise FaultNotEffectiveError(
                f"the NetworkPolicies {', '.join(made.policies)} were created but a new "
                f"connection from the head pod '{head.name}' to Redis at {host}:{port} still "
                f"succeeded {timeout:g} s later ({new.tries} tries): this cluster's network "
                "plugin does not enforce NetworkPolicy (e.g. kindnet or flannel alone). They "
                "were deleted again: no partition happened"
            )
        established, counts = partition.held_outcome(
            target, held, partitioned_at, new.at, established_window
        )
        seen_after = round(max(0.0, new.at - partitioned_at), 3)
        logger.info(
            "Redis %s cut off from RayCluster %s: a new connection from %s %s %.1f s after "
            "the policies were created; the connection established before them was %s",
            ", ".join(made.redis_pods), made.cluster, head.name, new.error, seen_after,
            established,
        )  # fmt: skip
        if established == "kept":
            logger.warning(
                "The connection from %s to Redis established before the partition still gets "
                "answers: this cluster's network plugin keeps established flows, so the GCS's "
                "own connection to Redis is not cut; the GCS meets the partition only when it "
                "opens a new connection",
                head.name,
            )
        return {
            "partitioned": {
                "pod": redis[0].name,
                "role": "redis",
                "redis_pods": list(made.redis_pods),
                "cluster": made.cluster,
                "checked_from": head.name,
            },
            "partitioned_at": partitioned_at,
            "target": target.kind,
            "dry_run": False,
            "policies": list(made.policies),
            "redis_address": address,
            "new_connection": {"error": new.error, "seen_after_s": seen_after},
            "established_connection": {
                "outcome": established,
                "answers": counts,
                "watched_s": established_window,
                "first_answer": held.first_answer,
            },
            "recovery": None,
        }


def _undo(target: Target, redis: Pod, held: partition.HeldConnection) -> None:
    """Delete the policies of a partition that did not take effect, marking it not injected."""
    mark("fault_not_injected", pod=redis.name, error="FaultNotEffectiveError")
    try:
        target.heal_redis_partition()
        partition.release(target, held)
    except ChaosRaySvcError as exc:
        logger.error("Undoing the partition that did not take effect failed: %s", exc)


def heal_redis_partition(
    verify: bool = True,
    timeout: float = 60,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Delete the NetworkPolicies of `partition_redis` and check Redis is reachable again.

    Deletes them by name (nothing to delete is fine: the partition may have been refused or
    undone). With `verify` and something deleted, waits up to `timeout` seconds for a new
    connection from the head pod to Redis to succeed (needs `pods/exec`); raises
    `ActivityFailed` when it does not. Returns what was deleted and when Redis answered.
    """
    with activity_errors():
        _, timeout = limits("heal_redis_partition", 0, timeout)
    target = target_for(configuration, secrets)
    with activity_errors():
        deleted = target.heal_redis_partition()
        healed_at = time.time()
        result: dict[str, Any] = {"deleted": deleted, "target": target.kind, "reconnected": None}
        if not deleted or not verify:
            return result
        mark("partition_healed", policies=deleted)
        _, host, port = _endpoint(target)
        head = running_head(target, "check Redis is reachable again from")
        new = partition.wait_new_connection(target, head, host, port, "connect", timeout)
        if new.error:
            raise FaultNotEffectiveError(
                f"Redis at {host}:{port} is still unreachable from the head pod '{head.name}' "
                f"{timeout:g} s after the NetworkPolicies were deleted ({new.error})"
            )
        result["reconnected"] = {"pod": head.name, "after_s": round(new.at - healed_at, 3)}
        return result
