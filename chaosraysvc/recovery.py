"""Wait for a RayService to recover after a fault, recording when each milestone is reached.

Used by the pod actions (`wait_for_milestones` after a deletion, `wait_until_healthy` for the
`wait_for_recovery` rollback). Reading the dashboard while it is down is part of waiting: an
unreachable dashboard counts as "not RUNNING yet" here, never as an error.

Milestones, in the order they are expected, as seconds after the fault:
- `pod_ready`: a replacement pod of the deleted pod's role is ready (a new name or
  uid, or the same pod restarted);
- `endpoints_restored`: at least as many serve endpoints are ready as before;
- `applications_running`: every application seen before the fault is RUNNING again.
Endpoint and application milestones only count once the replacement pod is ready,
so a stale "RUNNING" read just after the fault is never taken for a recovery.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chaosraysvc.errors import RecoveryTimeoutError, ServeApiError
from chaosraysvc.model import Pod
from chaosraysvc.serve import rest
from chaosraysvc.targets.base import Target, ready_endpoint_count

logger = logging.getLogger("chaostoolkit")
POLL_S = 0.5
READ_TIMEOUT_S = 2.0  # one dashboard read while polling
MILESTONES = ("pod_ready", "endpoints_restored", "applications_running")
Marker = Callable[..., object]


@dataclass
class Baseline:
    """What "recovered" means: the state before the fault."""

    endpoints: int
    applications: set[str]
    pods: set[str]

    @classmethod
    def capture(cls, target: Target) -> Baseline:
        apps: set[str] = set()
        try:
            apps = set(rest.application_statuses(rest.get_serve_details(target.dashboard())))
        except ServeApiError as exc:
            logger.warning("Serve applications unknown before the fault: %s", exc)
        return cls(
            endpoints=ready_endpoint_count(target),
            applications=apps,
            pods={p.name for p in target.pods()},
        )


@dataclass
class Recovery:
    """Milestones reached after a fault (epoch seconds) and the replacement pod."""

    fault_at: float
    milestones: dict[str, float] = field(default_factory=dict)
    new_pod: str = ""
    # When the deleted pod left the target's pod list: its processes had ended. With a grace
    # period this is when Ray's drain ended (SIGTERM to PID 1 ... SIGKILL), not the deletion.
    terminated_at: float | None = None

    def seconds(self) -> dict[str, float]:
        return {k: round(v - self.fault_at, 3) for k, v in self.milestones.items()}

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "new_pod": self.new_pod,
            "recovered": all(m in self.milestones for m in MILESTONES),
            "seconds_to": self.seconds(),
            "at": dict(self.milestones),
        }
        if self.terminated_at is not None:
            body["deleted_pod_gone_s"] = round(self.terminated_at - self.fault_at, 3)
        return body


def _replacement(target: Target, deleted: Pod, before: set[str]) -> Pod | None:
    """Return a ready pod replacing `deleted`: a new pod, or the same one restarted."""
    for pod in target.pods():
        if pod.role != deleted.role or not pod.ready:
            continue
        new_pod = pod.name not in before and pod.name != deleted.name
        restarted = pod.name == deleted.name and pod.restarts > deleted.restarts
        if new_pod or restarted:
            return pod
    return None


def apps_running(target: Target, expected: set[str]) -> bool:
    """Return whether every application (and at least those `expected`) is RUNNING."""
    try:
        statuses = rest.application_statuses(
            rest.get_serve_details(target.dashboard(), timeout=READ_TIMEOUT_S)
        )
    except ServeApiError:
        return False
    if not statuses or not expected.issubset(statuses):
        return False
    return all(s == "RUNNING" for s in statuses.values())


def wait_for_milestones(
    target: Target,
    deleted: Pod,
    fault_at: float,
    baseline: Baseline,
    recovery_timeout: float,
    mark: Marker | None = None,
) -> Recovery:
    """Poll `target` until every milestone holds at once; raise `RecoveryTimeoutError` if not.

    `mark(event, **detail)` is called as each milestone is first reached (the traffic
    engine uses it to split its statistics into phases).
    """
    recovery = Recovery(fault_at=fault_at)
    deadline = time.monotonic() + recovery_timeout

    def reach(name: str, **detail: Any) -> None:
        if name not in recovery.milestones:
            recovery.milestones[name] = time.time()
            logger.info("Recovery: %s after %.1f s", name, recovery.milestones[name] - fault_at)
            if mark is not None:
                mark(name, **detail)

    while True:
        if recovery.terminated_at is None and deleted.name not in {p.name for p in target.pods()}:
            recovery.terminated_at = time.time()
            logger.info("Recovery: deleted pod %s gone after %.1f s", deleted.name,
                        recovery.terminated_at - fault_at)  # fmt: skip
            if mark is not None:
                mark("pod_terminated", pod=deleted.name, role=deleted.role)
        pod = _replacement(target, deleted, baseline.pods)
        if pod is not None:
            recovery.new_pod = pod.name
            reach("pod_ready", pod=pod.name, role=pod.role)
        if "pod_ready" in recovery.milestones:
            endpoints_ok = ready_endpoint_count(target) >= baseline.endpoints
            if endpoints_ok:
                reach("endpoints_restored", endpoints=baseline.endpoints)
            apps_ok = apps_running(target, baseline.applications)
            if apps_ok:
                reach("applications_running")
            if endpoints_ok and apps_ok:
                return recovery
        if time.monotonic() > deadline:
            missing = [m for m in MILESTONES if m not in recovery.milestones]
            raise RecoveryTimeoutError(
                f"{deleted.role} pod {deleted.name} was deleted but the RayService did not "
                f"recover within {recovery_timeout:.0f} s: still waiting for {', '.join(missing)}"
                f" (expected {baseline.endpoints} ready endpoints and applications "
                f"{sorted(baseline.applications) or 'any'} RUNNING); check the pods and the "
                "Serve status, or raise `timeout`"
            )
        time.sleep(POLL_S)


def wait_until_healthy(target: Target, recovery_timeout: float) -> dict[str, Any]:
    """Wait until every pod and endpoint is ready and every application RUNNING."""
    start = time.time()
    deadline = time.monotonic() + recovery_timeout
    while True:
        pods = target.pods()
        endpoints = target.serve_endpoints()
        pods_ok = bool(pods) and all(p.ready for p in pods)
        endpoints_ok = bool(endpoints) and all(e.ready for e in endpoints)
        if pods_ok and endpoints_ok and apps_running(target, set()):
            return {
                "healthy": True,
                "seconds": round(time.time() - start, 3),
                "pods": len(pods),
                "endpoints": len(endpoints),
            }
        if time.monotonic() > deadline:
            unready = [p.name for p in pods if not p.ready]
            raise RecoveryTimeoutError(
                f"the RayService was not healthy within {recovery_timeout:.0f} s: pods not ready "
                f"{unready or 'none'}, endpoints ready {sum(e.ready for e in endpoints)}/"
                f"{len(endpoints)}, applications RUNNING: {apps_running(target, set())}"
            )
        time.sleep(POLL_S)
