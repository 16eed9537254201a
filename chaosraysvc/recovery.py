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

A dead node is not a slow recovery: when recovery is slow, `NodeWatch` reads the nodes'
Ready condition (kubernetes target; a cluster-scoped read that
deploy/node-reader-clusterrole.yaml grants). The timeout's message names the NotReady nodes
(since when) and the Pending pods, and when every schedulable node has been NotReady for
more than `NOT_READY_BOUND_S` the wait stops early with that message. Without node read
(403) the message says so and how to grant it; the wait then runs its full time.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chaosraysvc.errors import (
    ChaosRaySvcError,
    KubernetesApiError,
    RecoveryTimeoutError,
    ServeApiError,
)
from chaosraysvc.model import Node, Pod
from chaosraysvc.serve import rest
from chaosraysvc.targets.base import Target, ready_endpoint_count

logger = logging.getLogger("chaostoolkit")
POLL_S = 0.5
READ_TIMEOUT_S = 2.0  # one dashboard read while polling
MILESTONES = ("pod_ready", "endpoints_restored", "applications_running")
Marker = Callable[..., object]
NODE_CHECK_AFTER_S = 30.0  # a recovery slower than this reads the nodes ...
NODE_CHECK_EVERY_S = 10.0  # ... this often (one cluster-scoped list per read)
NOT_READY_BOUND_S = 60.0  # every schedulable node NotReady this long: no pod can become ready
NODE_READ_HINT = (
    "grant node read to tell a NotReady node from a slow recovery: "
    "kubectl apply -f deploy/node-reader-clusterrole.yaml"
)


def _utc(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def not_ready_since(node: Node, now: float) -> str:
    """Return "node n is NotReady (Ready=Unknown, NodeStatusUnknown) since <UTC>, N s ago"."""
    reason = f", {node.reason}" if node.reason else ""
    since = (
        f" since {_utc(node.since)}, {now - node.since:.0f} s ago"
        if node.since
        else " (since: unknown)"
    )
    return f"node {node.name} is NotReady (Ready={node.ready}{reason}){since}"


@dataclass
class NodeWatch:
    """Read the target's nodes while a recovery is slow, to tell a dead node from a slow pod.

    `check_after` seconds after `started` (monotonic), then every `NODE_CHECK_EVERY_S`, `poll`
    reads `target.nodes()`. A 403 is read once and kept as `unreadable` (with the hint to grant
    node read); other API errors are kept too and read again at the next poll.
    """

    target: Target
    started: float
    check_after: float = NODE_CHECK_AFTER_S
    nodes: list[Node] = field(default_factory=list)
    unreadable: str = ""
    forbidden: bool = False
    _last: float = -math.inf

    def poll(self, force: bool = False) -> None:
        """Read the nodes when due (or `force`), unless node read is forbidden."""
        now = time.monotonic()
        due = now - self.started >= self.check_after and now - self._last >= NODE_CHECK_EVERY_S
        if self.forbidden or not (force or due):
            return
        self._last = now
        try:
            self.nodes, self.unreadable = self.target.nodes(), ""
        except KubernetesApiError as exc:
            self.forbidden = exc.status == 403
            self.unreadable = (
                f"the nodes could not be read (403: node read not granted); {NODE_READ_HINT}"
                if self.forbidden
                else f"the nodes could not be read: {exc}"
            )
        except ChaosRaySvcError as exc:
            self.unreadable = f"the nodes could not be read: {exc}"

    def not_ready(self) -> list[Node]:
        """Return the nodes whose Ready condition is False or Unknown."""
        return [n for n in self.nodes if n.ready != "True"]

    def hopeless(self, now: float) -> str:
        """Return why no pod can become ready (every schedulable node NotReady for more than
        `NOT_READY_BOUND_S`), or "" while one may."""
        schedulable = [n for n in self.nodes if n.schedulable]
        if not schedulable:
            return ""
        if all(
            n.ready != "True" and n.since and now - n.since > NOT_READY_BOUND_S for n in schedulable
        ):
            said = "; ".join(not_ready_since(n, now) for n in schedulable)
            return (
                f"every schedulable node has been NotReady for more than "
                f"{NOT_READY_BOUND_S:.0f} s ({said}), so no pod can become ready"
            )
        return ""

    def explain(self, pods: list[Pod], now: float) -> str:
        """Return what the nodes and pods tell about a recovery that did not come, or ""."""
        parts = [not_ready_since(n, now) for n in self.not_ready()]
        on_bad = {n.name for n in self.not_ready()}
        for pod in pods:
            if pod.ready:
                continue
            if pod.phase == "Pending" and not pod.node:
                parts.append(f"pod {pod.name} is Pending, not scheduled on any node")
            elif pod.node in on_bad:
                parts.append(f"pod {pod.name} ({pod.phase}) is on NotReady node {pod.node}")
            elif pod.phase == "Pending":
                parts.append(f"pod {pod.name} is Pending on node {pod.node}")
        if self.unreadable:
            parts.append(self.unreadable)
        return "; ".join(parts)


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


def replacement(
    target: Target, deleted: Pod, before: set[str], pods: list[Pod] | None = None
) -> Pod | None:
    """Return a ready pod replacing `deleted`: a new pod, or the same one restarted (among
    `pods` when given, else the target's)."""
    for pod in target.pods() if pods is None else pods:
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
    started = time.monotonic()
    deadline = started + recovery_timeout
    watch = NodeWatch(target, started, NODE_CHECK_AFTER_S)

    def failure(why: str) -> RecoveryTimeoutError:
        missing = [m for m in MILESTONES if m not in recovery.milestones]
        pods = [
            p for p in _pods_or_none(target) if p.role == deleted.role or p.name == deleted.name
        ]
        nodes = watch.explain(pods, time.time())
        return RecoveryTimeoutError(
            f"{deleted.role} pod {deleted.name}"
            + (f" (on node {deleted.node})" if deleted.node else "")
            + f" was deleted but the RayService {why}: still waiting for {', '.join(missing)}"
            f" (expected {baseline.endpoints} ready endpoints and applications "
            f"{sorted(baseline.applications) or 'any'} RUNNING)"
            + (
                f"; {nodes}"
                if nodes and not watch.unreadable
                else "; check the pods and the Serve status, or raise `timeout`"
                + (f"; {nodes}" if nodes else "")
            )
        )

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
        pod = replacement(target, deleted, baseline.pods)
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
        watch.poll()
        hopeless = watch.hopeless(time.time())
        if hopeless:
            waited = time.monotonic() - started
            raise failure(
                f"cannot recover: {hopeless}; stopped waiting after {waited:.0f} s of "
                f"{recovery_timeout:.0f} s. Bring the node(s) back"
            )
        if time.monotonic() > deadline:
            watch.poll(force=True)
            raise failure(f"did not recover within {recovery_timeout:.0f} s")
        time.sleep(POLL_S)


def _pods_or_none(target: Target) -> list[Pod]:
    """The target's pods for a failure's message ([] when they cannot be read: the message
    then says less, and the failure is raised all the same)."""
    try:
        return target.pods()
    except ChaosRaySvcError as exc:
        logger.warning("Pods unknown while explaining a recovery timeout: %s", exc)
        return []


def wait_until_healthy(target: Target, recovery_timeout: float) -> dict[str, Any]:
    """Wait until every pod and endpoint is ready and every application RUNNING."""
    start = time.time()
    started = time.monotonic()
    deadline = started + recovery_timeout
    # a rollback after a failed recovery: read the nodes at the first unhealthy poll, so a
    # dead node found by the method's wait stops this one at once
    watch = NodeWatch(target, started, check_after=0.0)
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
        watch.poll()
        hopeless = watch.hopeless(time.time())
        timed_out = time.monotonic() > deadline
        if hopeless or timed_out:
            if timed_out:
                watch.poll(force=True)
            unready = [p.name for p in pods if not p.ready]
            waited = time.monotonic() - started
            why = (
                f"cannot become healthy: {hopeless}; stopped waiting after {waited:.0f} s of "
                f"{recovery_timeout:.0f} s. Bring the node(s) back"
                if hopeless
                else f"was not healthy within {recovery_timeout:.0f} s"
            )
            nodes = watch.explain([p for p in pods if not p.ready], time.time())
            raise RecoveryTimeoutError(
                f"the RayService {why}: pods not ready "
                f"{unready or 'none'}, endpoints ready {sum(e.ready for e in endpoints)}/"
                f"{len(endpoints)}, applications RUNNING: {apps_running(target, set())}"
                + (f"; {nodes}" if nodes else "")
            )
        time.sleep(POLL_S)
