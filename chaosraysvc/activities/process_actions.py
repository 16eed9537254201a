"""Actions that kill one process inside a pod, as KubeRay's own HA test kills the GCS.

::

    {"type": "action", "name": "kill-gcs-server",
     "provider": {"type": "python", "module": "chaosraysvc.activities.process_actions",
                  "func": "kill_gcs_server", "arguments": {"timeout": 180}}}

On Kubernetes it runs `pkill -KILL -x gcs_server` in the head through `pods/exec`, which
chaosraysvc's Role does not grant: apply the opt-in `deploy/exec-role.yaml` and
`deploy/exec-rolebinding.yaml` first (without them the action fails naming them).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaosraysvc import recovery
from chaosraysvc.activities.common import activity_errors, limits, target_for
from chaosraysvc.activities.pod_actions import refuse_without_gcs_ft, running_head, setup_facts
from chaosraysvc.traffic.registry import mark

__all__ = ["kill_gcs_server"]
logger = logging.getLogger("chaostoolkit")
GCS_PROCESS = "gcs_server"


def kill_gcs_server(
    wait_for_recovery: bool = True,
    timeout: float = 180,
    allow_without_gcs_ft: bool = False,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """SIGKILL the GCS server inside the head pod and wait for the service to recover.

    Ray's `ray start --block` exits when the GCS dies, so the head restarts in place
    (restarts + 1) and the new GCS recovers the cluster state from Redis. With
    `wait_for_recovery`, waits up to `timeout` seconds for the head to be ready again, the
    serve endpoints restored and the applications RUNNING, and returns the time to each.
    Refuses without GCS fault tolerance (unless `allow_without_gcs_ft`); on the kubernetes
    target it needs `pods/exec` (the opt-in deploy/exec-role.yaml), else `ActivityFailed`.
    """
    _, timeout = limits("kill_gcs_server", 0, timeout)
    target = target_for(configuration, secrets)
    with activity_errors():
        if not allow_without_gcs_ft:
            refuse_without_gcs_ft(target, "kill the GCS server")
        head = running_head(target, "kill the GCS server in")
        baseline = recovery.Baseline.capture(target)
        facts = setup_facts(target)
        mark("fault", pod=head.name, role="head", action="kill_gcs_server", **facts)
        killed_at = time.time()
        try:
            target.kill_process(head, GCS_PROCESS)
        except Exception as exc:
            mark("fault_not_injected", pod=head.name, error=type(exc).__name__)
            raise
        logger.info("Killed %s in head pod %s", GCS_PROCESS, head.name)
        result: dict[str, Any] = {
            "killed": {"pod": head.name, "role": "head", "process": GCS_PROCESS},
            "killed_at": killed_at,
            "target": target.kind,
            "before": {
                "endpoints": baseline.endpoints,
                "applications": sorted(baseline.applications),
            },
            "recovery": None,
        }
        if wait_for_recovery:
            rec = recovery.wait_for_milestones(
                target, head, killed_at, baseline, timeout, mark=mark
            )
            result["recovery"] = rec.to_json()
        return result
