"""Follow a Redis Sentinel failover after the primary is lost, milestone by milestone.

Milestones, as seconds after the fault (epoch seconds in `Recovery.milestones`):
- `primary_elected`: the Sentinel behind the GCS address names another primary;
- `gcs_reconnected`: the new primary has a client from the head pod that has stayed connected
  `GCS_HOLD_S` seconds (the GCS keeps its connection; a restarted head's `ray start` checks
  Redis on a short one first), dated by when it connected (`CLIENT LIST`'s `age`, whole
  seconds: up to 1 s early);
- `pod_ready`: the deleted Redis pod's replacement (same name, new uid) is ready;
- `endpoints_restored`, `applications_running`: as after any fault (`chaosraysvc.recovery`),
  counted only once the GCS is on the new primary.
A milestone not reached within the time given is missing from the result, not an error: a
failover that never completes is what the experiment is for, and its hypothesis judges it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from chaosraysvc import recovery
from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc.model import Pod
from chaosraysvc.model.sentinel import Primary
from chaosraysvc.targets.base import Target, pods_of_role, ready_endpoint_count

__all__ = ["FAILOVER_MILESTONES", "follow_failover", "head_clients"]
logger = logging.getLogger("chaostoolkit")
FAILOVER_MILESTONES = (
    "primary_elected",
    "gcs_reconnected",
    "pod_ready",
    "endpoints_restored",
    "applications_running",
)
POLL_S = 0.5
READ_TIMEOUT_S = 3.0
GCS_HOLD_S = 3  # seconds a head client must stay connected to count as the GCS


def sentinel_primary(target: Target, name: str) -> str:
    """Return the address ("host:port") the Sentinel names for group `name` ("" when it
    gives none or no answer in time)."""
    reply = target.redis_command(
        ["SENTINEL", "GET-MASTER-ADDR-BY-NAME", name], timeout=READ_TIMEOUT_S
    )
    lines = reply.lines if reply is not None and not reply.error else ()
    return f"{lines[0]}:{lines[1]}" if len(lines) >= 2 and lines[1].isdigit() else ""


def head_clients(target: Target, address: str) -> list[tuple[str, int]]:
    """Return the clients of the Redis at `address` that come from a head pod's IP, each as
    `CLIENT LIST`'s `addr` and `age` (seconds connected); [] when it gives no answer."""
    heads = {p.address for p in pods_of_role(target, "head") if p.address}
    reply = target.redis_command(["CLIENT", "LIST"], timeout=READ_TIMEOUT_S, address=address)
    if reply is None or reply.error:
        return []
    found = []
    for line in reply.lines:
        fields = dict(part.partition("=")[::2] for part in line.split())
        ip = fields.get("addr", "").rpartition(":")[0]
        if ip in heads:
            age = fields.get("age", "0")
            found.append((fields["addr"], int(age) if age.isdigit() else 0))
    return found


def follow_failover(
    target: Target,
    old: Primary,
    deleted: Pod,
    fault_at: float,
    baseline: recovery.Baseline,
    timeout: float,
    mark: Callable[..., object] | None = None,
) -> tuple[recovery.Recovery, str]:
    """Poll until every milestone is reached or `timeout` seconds pass; return them and the
    new primary's address ("" when none was elected)."""
    found = recovery.Recovery(fault_at=fault_at)
    deadline = time.monotonic() + timeout
    new = ""

    def reach(name: str, at: float = 0.0, **detail: object) -> None:
        if name not in found.milestones:
            found.milestones[name] = at or time.time()
            logger.info("Failover: %s after %.1f s", name, found.milestones[name] - fault_at)
            if mark is not None:
                mark(name, **detail)

    while time.monotonic() < deadline:
        try:
            if not new:
                named = sentinel_primary(target, old.name)
                if named and named != old.address:
                    new = named
                    reach("primary_elected", primary=new, previous=old.address)
            if new and "gcs_reconnected" not in found.milestones:
                # the GCS keeps its connection; a restarted head's `ray start` checks Redis
                # on a short one first: a client counts once it has held on GCS_HOLD_S
                held = [age for _, age in head_clients(target, new) if age >= GCS_HOLD_S]
                if held:
                    reach("gcs_reconnected", at=time.time() - max(held), primary=new)
            again = target.find_pod(deleted.name) if "pod_ready" not in found.milestones else None
            if again is not None and again.uid != deleted.uid and again.ready:
                found.new_pod = again.name
                reach("pod_ready", pod=again.name, role="redis")
            if "gcs_reconnected" in found.milestones:
                if ready_endpoint_count(target) >= baseline.endpoints:
                    reach("endpoints_restored", endpoints=baseline.endpoints)
                if recovery.apps_running(target, baseline.applications):
                    reach("applications_running")
        except ChaosRaySvcError as exc:  # a read during the failover: try again
            logger.debug("Failover: read failed, trying again: %s", exc)
        if all(m in found.milestones for m in FAILOVER_MILESTONES):
            break
        time.sleep(POLL_S)
    return found, new
