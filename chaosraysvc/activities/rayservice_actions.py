"""Actions on the RayService object itself: upgrade it under traffic.

::

    {"type": "action", "name": "upgrade-rayservice",
     "provider": {"type": "python", "module": "chaosraysvc.activities.rayservice_actions",
                  "func": "upgrade_rayservice", "arguments": {"timeout": 600}}}

Only a real KubeRay operator rolls out an upgrade (a new RayCluster, then the serve Service
switched to it, then the old cluster deleted), so this needs the kubernetes target and RBAC
`patch` on `rayservices`, which deploy/role.yaml does not grant (a scheduled head-kill has no
use for it).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaosraysvc import recovery, rollout
from chaosraysvc.activities.common import activity_errors, limits, target_for
from chaosraysvc.errors import ConfigurationError, RefusedError, TargetNotReadyError
from chaosraysvc.traffic.registry import mark

__all__ = ["upgrade_rayservice"]
logger = logging.getLogger("chaostoolkit")
RESTARTED_AT = "chaosraysvc.io/restartedAt"


def restart_patch(when: datetime) -> dict[str, Any]:
    """Return the spec patch of a restart: an annotation on the head pod template.

    Like `kubectl rollout restart`, it changes the pod template (so KubeRay's hash of
    `rayClusterConfig` and a new cluster) without changing what runs.
    """
    stamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    template = {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}
    return {"rayClusterConfig": {"headGroupSpec": template}}


def _checked_patch(patch: Any) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise ConfigurationError(
            f"upgrade_rayservice: `patch` must be an object (a JSON merge patch of the "
            f'RayService\'s spec, e.g. {{"rayClusterConfig": {{...}}}}), got '
            f"{type(patch).__name__}"
        )
    if patch and "rayClusterConfig" not in patch:
        raise ConfigurationError(
            f"upgrade_rayservice: `patch` changes {sorted(patch)} but not `rayClusterConfig`: "
            "KubeRay rolls out a new cluster only when rayClusterConfig changes; patch it (or "
            "leave `patch` empty for a restart of the same spec)"
        )
    return patch


def upgrade_rayservice(
    patch: dict[str, Any] | None = None,
    wait_for_old_cluster: bool = True,
    timeout: float = 600,
    dry_run: bool = False,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Upgrade the RayService (a new RayCluster) and wait until the new cluster serves.

    `patch` is a JSON merge patch of the RayService's `spec` that must change
    `rayClusterConfig`; empty, the head pod template gets a `chaosraysvc.io/restartedAt`
    annotation (a restart of the same spec). Waits up to `timeout` seconds for KubeRay to
    create the new cluster, make its pods ready, switch the serve Service, the endpoints to
    be restored and the applications RUNNING and, with `wait_for_old_cluster`, the old
    cluster's pods gone; returns the seconds to each. `dry_run` has the API server validate
    the patch without storing it. Raises `ActivityFailed` on the sandbox, while another
    upgrade is under way, for a patch the RayService CRD rejects, or on timeout.
    """
    _, timeout = limits("upgrade_rayservice", 0, timeout)
    target = target_for(configuration, secrets)
    with activity_errors():
        change = _checked_patch({} if patch is None else patch) or restart_patch(datetime.now(UTC))
        active, pending = target.ray_clusters()
        if not active:
            raise TargetNotReadyError("the RayService has no active cluster to upgrade from")
        if pending:
            raise RefusedError(
                f"refusing to upgrade: KubeRay is already rolling out cluster '{pending}' "
                f"(active: '{active}'); wait until it is done, then run again"
            )
        baseline = recovery.Baseline.capture(target)
        result: dict[str, Any] = {
            "upgraded": {"from_cluster": active, "patch": change},
            "patched_at": None,
            "dry_run": dry_run,
            "target": target.kind,
            "before": {
                "endpoints": baseline.endpoints,
                "applications": sorted(baseline.applications),
            },
            "recovery": None,
        }
        if dry_run:
            target.upgrade(change, dry_run=True)
            return result
        mark("fault", role="rayservice", cluster=active, action="upgrade_rayservice")
        patched_at = time.time()
        try:
            target.upgrade(change)
        except Exception as exc:
            mark("fault_not_injected", cluster=active, error=type(exc).__name__)
            raise
        result["patched_at"] = patched_at
        done = rollout.wait_for_rollout(
            target, active, patched_at, baseline, timeout, wait_for_old_cluster, mark=mark
        )
        result["upgraded"]["to_cluster"] = done.new_cluster
        result["recovery"] = done.to_json()
        return result
