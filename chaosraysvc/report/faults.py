"""Find the faults of a run and when the service reached each recovery milestone.

A fault is a pod deleted by one of chaosraysvc's delete actions, a RayService upgraded by
`upgrade_rayservice` (role "rayservice", `pod` the old cluster, `new_pod` the new one), or the
head's GCS process killed by `kill_gcs_server` (the head pod, restarted in place), or the
Redis pod cut off from the Ray pods by `partition_redis` (NetworkPolicies, healed by its
rollback), or the Redis pod paused by `hang_redis` (CLIENT PAUSE, no pod replaced), or the
Redis primary a Sentinel names deleted by `kill_redis_primary` (the failover follows), or
the node of a pod drained by `drain_node` (cordon and evictions), or the node (or zone) of a
pod lost by `lose_node` (`lost`, `lost_at`; its own milestones in `node_loss_s`); each
kill of `delete_pods` is a fault of its own.
Its facts come from the action's output in the journal (`deleted`, `deleted_at`,
`recovery.at`) when the action succeeded, and from the traffic log's marks (`fault`,
`pod_ready`, `endpoints_restored`, `applications_running`) otherwise: a delete action that timed
out waiting for recovery leaves no output but its marks. A `fault` mark followed by the
action's `fault_not_injected` mark (the call that injects the fault raised: refused by the
target, an API error) is no fault. Each fault is a dict::

    {"action": "delete-head-pod", "func": "delete_head_pod", "status": "failed",
     "error": "RecoveryTimeoutError: ...", "pod": "...-head-nbzlw", "role": "head",
     "at": 1795652762.28, "offset_s": 6.59, "target": "sandbox", "grace_period": 0,
     "dry_run": false, "confirmed": true, "injected": true, "awaited": true,
     "recovered": false, "new_pod": "", "milestones_at": {"pod_ready": ...},
     "seconds_to": {...}, "recovery_s": null, "missing": ["pod_ready", ...],
     "cut_off": false}

`cut_off` (and then `log_end_after_s`) is set by the report for a run without journal
whose traffic log ends before the recovery (`Fault.cut_off_at`).

`confirmed` is False for a fault action with no fault in its output and no fault mark
left standing: it failed before its fault, the target refused the fault
(`fault_not_injected`), or it ran dry (`chaos run --dry actions` records it succeeded
with no output). `injected` says whether the fault happened: True when confirmed and not a
dry run; False for a dry run, a refused fault, or an unconfirmed fault of a run whose
traffic log was read (every fault action marks its fault in the log before injecting
it); None when nothing tells (no traffic was recorded). `recovery_s` is the time to the
last milestone when every milestone was reached.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from chaosraysvc.report.values import (
    activity_func,
    activity_name,
    activity_results,
    as_dict,
    epoch,
    number,
    short_error,
)

__all__ = [
    "DRAIN",
    "FAILOVER",
    "HANG",
    "LOSE",
    "MILESTONES",
    "PARTITION",
    "Fault",
    "find_faults",
    "is_fault_action",
    "undone_fault_marks",
]

MILESTONES = ("pod_ready", "endpoints_restored", "applications_running")
UPGRADE = "upgrade_rayservice"  # its fault: role "rayservice", pod = the old cluster's name
KILL_GCS = "kill_gcs_server"  # its fault: the head pod whose GCS process was killed
DELETE_PODS = "delete_pods"  # one fault per kill in its output's `kills`
PARTITION = "partition_redis"  # its fault: the Redis pod cut off from the Ray pods
HANG = "hang_redis"  # its fault: the Redis pod paused (CLIENT PAUSE ALL)
FAILOVER = "kill_redis_primary"  # its fault: the Redis primary's pod deleted (`deleted`)
DRAIN = "drain_node"  # its fault: the node of a pod (`drained`) cordoned and its pods evicted
FAILOVER_MILESTONES = ("primary_elected", "gcs_reconnected")  # its own, before MILESTONES
LOSE = "lose_node"  # its fault: the node(s) of a pod (`lost`) lost as machines are lost
NODE_LOSS_MILESTONES = ("node_not_ready", "endpoints_dropped", "pods_evicted", "node_deleted")


@dataclass(frozen=True)
class Fault:
    """One fault of a run and the recovery milestones after it (see the module docstring).

    Times: `at` and `milestones_at` are epoch seconds, `offset_s` counts from the report's
    origin (the traffic start), `seconds_to` and `recovery_s` from `at`.
    """

    action: str = ""
    func: str = ""
    status: str = ""
    error: str = ""
    pod: str = ""
    role: str = ""
    at: float | None = None
    target: str = ""
    grace_period: float | None = None
    dry_run: bool = False
    refused: bool = False
    new_pod: str = ""
    milestones_at: dict[str, float] = field(default_factory=dict)
    recovered: bool | None = None
    awaited: bool = False
    confirmed: bool = False
    injected: bool | None = None
    offset_s: float | None = None
    seconds_to: dict[str, float | None] = field(default_factory=dict)
    recovery_s: float | None = None
    missing: list[str] = field(default_factory=list)
    cut_off: bool = False
    log_end_after_s: float | None = None
    ended_at: float | None = None  # a hang's end: when Redis answered again (epoch s)
    # a Redis failover (kill_redis_primary): seconds after the deletion to `primary_elected`
    # and `gcs_reconnected`, and the new primary's address
    failover_s: dict[str, float] = field(default_factory=dict)
    new_primary: str = ""
    # a node loss (lose_node): the nodes lost and seconds after the loss to its own milestones
    lost_nodes: list[str] = field(default_factory=list)
    node_loss_s: dict[str, float] = field(default_factory=dict)
    # a drain (drain_node): pod -> seconds a PodDisruptionBudget refused its eviction (from its
    # first refusal to the eviction accepted; a drain still refused at its end failed instead)
    budget_held_s: dict[str, float] = field(default_factory=dict)

    @property
    def happened(self) -> bool:
        """Tell whether the fault took place: confirmed and not a dry run."""
        return self.confirmed and not self.dry_run

    def cut_off_at(self, log_end: float | None) -> Fault:
        """Return the fault of a run without journal whose traffic log ends at `log_end`.

        A fault that happened and whose recovery the log does not reach is `cut_off`: its
        recovery is unknown (`recovered` None), awaited, and the log ends
        `log_end_after_s` after it.
        """
        if not (self.happened and self.missing):
            return self
        at = self.at
        after = round(log_end - at, 3) if log_end and at else None
        return replace(self, cut_off=True, recovered=None, awaited=True, log_end_after_s=after)

    def to_json(self) -> dict[str, Any]:
        """Return the fault as the report's JSON object (`log_end_after_s` when cut off)."""
        out: dict[str, Any] = {
            "action": self.action,
            "func": self.func,
            "status": self.status,
            "error": self.error,
            "pod": self.pod,
            "role": self.role,
            "at": self.at,
            "target": self.target,
            "grace_period": self.grace_period,
            "dry_run": self.dry_run,
            "refused": self.refused,
            "new_pod": self.new_pod,
            "milestones_at": self.milestones_at,
            "recovered": self.recovered,
            "awaited": self.awaited,
            "confirmed": self.confirmed,
            "injected": self.injected,
            "offset_s": self.offset_s,
            "seconds_to": self.seconds_to,
            "recovery_s": self.recovery_s,
            "missing": self.missing,
            "cut_off": self.cut_off,
        }
        if self.cut_off:
            out["log_end_after_s"] = self.log_end_after_s
        if self.ended_at is not None:
            out["ended_at"] = self.ended_at
        if self.failover_s or self.new_primary:
            out["failover_s"] = self.failover_s
            out["new_primary"] = self.new_primary
        if self.lost_nodes:
            out["lost_nodes"] = self.lost_nodes
            out["node_loss_s"] = self.node_loss_s
        if self.budget_held_s:
            out["budget_held_s"] = self.budget_held_s
        return out


def is_fault_action(result: dict[str, Any]) -> bool:
    """Tell a journal result of a fault action: a pod deletion, an upgrade, a GCS kill."""
    func = activity_func(result)
    return (func.startswith("delete_") and func.endswith("_pod")) or func in (
        UPGRADE,
        KILL_GCS,
        DELETE_PODS,
        PARTITION,
        HANG,
        FAILOVER,
        DRAIN,
        LOSE,
    )


@dataclass
class _Draft:
    """A fault while its action's output and the traffic marks are read."""

    action: str = ""
    func: str = ""
    status: str = ""
    error: str = ""
    activity_start: float | None = None
    activity_end: float | None = None
    pod: str = ""
    role: str = ""
    at: float | None = None
    target: str = ""
    grace_period: float | None = None
    dry_run: bool = False
    refused: bool = False  # the action's fault_not_injected mark: the fault call raised
    new_pod: str = ""
    milestones_at: dict[str, float] = field(default_factory=dict)
    recovered: bool | None = None
    awaited: bool = False
    ended_at: float | None = None
    failover_at: dict[str, float] = field(default_factory=dict)
    new_primary: str = ""
    lost_nodes: list[str] = field(default_factory=list)
    node_loss_at: dict[str, float] = field(default_factory=dict)
    budget_held_s: dict[str, float] = field(default_factory=dict)


def _new_fault(result: dict[str, Any] | None) -> _Draft:
    result = result or {}
    status = str(result.get("status") or "")
    return _Draft(
        action=activity_name(result) if result else "",
        func=activity_func(result),
        status=status,
        error=short_error(result.get("exception")),
        activity_start=epoch(result.get("start")),
        activity_end=epoch(result.get("end")),
        # a delete action that failed was waiting for the recovery when it failed
        awaited=status == "failed",
    )


def _fault_from_output(result: dict[str, Any]) -> _Draft:
    output = as_dict(result.get("output"))
    deleted = as_dict(output.get("deleted"))
    upgraded = as_dict(output.get("upgraded"))
    if upgraded:  # the old cluster is what goes; the new cluster replaces it
        deleted = {"name": upgraded.get("from_cluster"), "role": "rayservice"}
    killed = as_dict(output.get("killed"))
    if killed:  # a process inside the pod; the pod restarts in place
        deleted = {"name": killed.get("pod"), "role": killed.get("role")}
    partitioned = as_dict(output.get("partitioned"))
    if partitioned:  # the Redis pod cut off from the Ray pods; nothing is replaced
        deleted = {"name": partitioned.get("pod"), "role": partitioned.get("role")}
    hung = as_dict(output.get("hung"))
    if hung:  # the Redis pod paused; nothing is replaced
        deleted = {"name": hung.get("pod"), "role": hung.get("role")}
    drained = as_dict(output.get("drained"))
    if drained:  # the pod's node drained: the pod evicted, a replacement elsewhere
        deleted = {"name": drained.get("name"), "role": drained.get("role")}
    lost = as_dict(output.get("lost"))
    if lost:  # the pod's node lost: the pod unreachable, then replaced elsewhere
        deleted = {"name": lost.get("name"), "role": lost.get("role")}
    recovery = output.get("recovery")
    fault = replace(
        _new_fault(result),
        pod=str(deleted.get("name") or ""),
        role=str(deleted.get("role") or ""),
        at=number(
            output.get("deleted_at")
            or output.get("patched_at")
            or output.get("killed_at")
            or output.get("partitioned_at")
            or output.get("hung_at")
            or output.get("drained_at")
            or output.get("lost_at")
        ),
        target=str(output.get("target") or ""),
        grace_period=number(output.get("grace_period")),
        dry_run=bool(output.get("dry_run")),
        awaited=False,
    )
    hung_at, answered = number(output.get("hung_at")), number(output.get("answered_again_after_s"))
    if hung and hung_at is not None and answered is not None:  # Redis answered again then
        fault.ended_at = hung_at + answered
    if isinstance(recovery, dict) and FAILOVER in (fault.func, fault.action):
        at = as_dict(recovery.get("at"))
        fault.failover_at = {m: at[m] for m in FAILOVER_MILESTONES if number(at.get(m))}
        fault.new_primary = str(output.get("new_primary") or "")
    if isinstance(recovery, dict) and lost:
        at = as_dict(recovery.get("at"))
        fault.node_loss_at = {m: at[m] for m in NODE_LOSS_MILESTONES if number(at.get(m))}
        nodes = lost.get("nodes")
        fault.lost_nodes = [str(n) for n in nodes] if isinstance(nodes, list) else []
    if drained:
        fault.budget_held_s = _budget_holds(as_dict(output.get("drain")))
    if isinstance(recovery, dict):
        at = as_dict(recovery.get("at"))
        fault.new_pod = str(recovery.get("new_pod") or recovery.get("new_cluster") or "")
        fault.milestones_at = {m: at[m] for m in MILESTONES if number(at.get(m))}
        fault.recovered = bool(recovery.get("recovered"))
        fault.awaited = True
    return fault


def _matches(fault: _Draft, mark: dict[str, Any]) -> bool:
    detail = as_dict(mark.get("detail"))
    if fault.pod:  # an upgrade's mark names the old cluster
        return (detail.get("pod") or detail.get("cluster")) == fault.pod
    if fault.func and detail.get("action") not in (None, fault.func):
        return False
    t, lo, hi = number(mark.get("t")), fault.activity_start, fault.activity_end
    if t is None or lo is None:
        return False
    return lo - 1.0 <= t <= (hi if hi is not None else float("inf")) + 1.0


def _target_of(mark: dict[str, Any]) -> str:
    detail = as_dict(mark.get("detail"))
    return str(detail.get("pod") or detail.get("cluster") or "")


def undone_fault_marks(marks: list[Any]) -> list[dict[str, Any]]:
    """Return the `fault` marks undone by a later `fault_not_injected` mark of the same pod.

    The actions mark a fault just before the call that injects it and, when that call
    raises (the target refused it, an API error), `fault_not_injected`: that fault never
    happened, so it starts no outage and is no fault of the run.
    """
    undone: list[dict[str, Any]] = []
    for i, mark in enumerate(marks):
        if not isinstance(mark, dict) or mark.get("event") != "fault_not_injected":
            continue
        earlier = (
            m
            for m in reversed(marks[:i])
            if isinstance(m, dict)
            and m.get("event") == "fault"
            and _target_of(m) == _target_of(mark)
            and not any(m is u for u in undone)
        )
        fault = next(earlier, None)
        if fault is not None:
            undone.append(fault)
    return undone


def _attach_marks(faults: list[_Draft], marks: list[dict[str, Any]]) -> None:
    for mark in (m for m in marks if m.get("event") == "fault_not_injected"):
        # the failed action whose fault the target refused
        fault = next(
            (f for f in faults if f.at is None and not f.refused and _matches(f, mark)),
            None,
        )
        if fault is not None:
            fault.refused = True
            fault.pod = fault.pod or _target_of(mark)
    undone = undone_fault_marks(marks)
    standing = [m for m in marks if m.get("event") == "fault" and not any(m is u for u in undone)]
    for mark in standing:
        detail = as_dict(mark.get("detail"))
        fault = next((f for f in faults if f.at is None and _matches(f, mark)), None)
        if fault is None:
            fault = next((f for f in faults if f.pod and _matches(f, mark)), None)
        if fault is None:  # a fault injected by something else than a delete action
            fault = _new_fault(None)
            fault.action = str(detail.get("action") or "")
            faults.append(fault)
        if fault.at is None:
            fault.at = float(mark["t"])
        fault.pod = fault.pod or str(detail.get("pod") or "")
        fault.role = fault.role or str(detail.get("role") or "")


def _milestones_from_marks(faults: list[_Draft], marks: list[dict[str, Any]]) -> None:
    for i, fault in enumerate(faults):
        if fault.at is None or fault.milestones_at:
            continue
        following = (f.at for f in faults[i + 1 :] if f.at is not None)
        until = next(following, float("inf"))
        for mark in marks:
            event, t = mark.get("event"), float(mark["t"])
            if event in MILESTONES and fault.at <= t < until:
                fault.milestones_at.setdefault(event, t)
                if event == "pod_ready" and not fault.new_pod:
                    fault.new_pod = str(as_dict(mark.get("detail")).get("pod") or "")
        # a failed delete action was waiting for recovery; the marks tell how far it got
        if fault.recovered is None and (fault.milestones_at or fault.status == "failed"):
            fault.awaited = True
            fault.recovered = all(m in fault.milestones_at for m in MILESTONES)


def _finish(draft: _Draft, origin: float | None, logged: bool) -> Fault:
    """Return the `Fault` of a draft once its marks are attached."""
    at = draft.at
    confirmed = at is not None
    if confirmed:
        injected: bool | None = not draft.dry_run
    else:
        injected = False if draft.refused or logged else None
    recovered, awaited = (None, False) if at is None else (draft.recovered, draft.awaited)
    seconds_to = {
        m: round(draft.milestones_at[m] - at, 3)
        if at is not None and m in draft.milestones_at
        else None
        for m in MILESTONES
    }
    reached = [s for s in seconds_to.values() if s is not None]
    return Fault(
        action=draft.action,
        func=draft.func,
        status=draft.status,
        error=draft.error,
        pod=draft.pod,
        role=draft.role,
        at=at,
        target=draft.target,
        grace_period=draft.grace_period,
        dry_run=draft.dry_run,
        refused=draft.refused,
        new_pod=draft.new_pod,
        milestones_at=draft.milestones_at,
        recovered=recovered,
        awaited=awaited,
        confirmed=confirmed,
        injected=injected,
        offset_s=round(at - origin, 3) if at is not None and origin is not None else None,
        seconds_to=seconds_to,
        recovery_s=max(reached) if recovered and reached else None,
        missing=[m for m in MILESTONES if seconds_to[m] is None],
        ended_at=draft.ended_at,
        failover_s={m: round(t - at, 3) for m, t in draft.failover_at.items() if at is not None},
        new_primary=draft.new_primary,
        lost_nodes=draft.lost_nodes,
        node_loss_s={m: round(t - at, 3) for m, t in draft.node_loss_at.items() if at is not None},
        budget_held_s=draft.budget_held_s,
    )


def _budget_holds(drain: dict[str, Any]) -> dict[str, float]:
    """From `drain_node`'s `drain` output: for each pod a PodDisruptionBudget refused, the
    seconds from its first refusal (`held`) to its eviction accepted (`evicted`)."""
    held, evicted = as_dict(drain.get("held")), as_dict(drain.get("evicted"))
    holds = {}
    for pod, first in held.items():
        first_s, evicted_s = number(first), number(evicted.get(pod))
        if first_s is not None and evicted_s is not None:
            holds[str(pod)] = round(max(evicted_s - first_s, 0.0), 3)
    return holds


def find_faults(
    journal: dict[str, Any], marks: list[Any], origin: float | None, logged: bool = True
) -> list[Fault]:
    """Return the faults of a run in time order (see the module docstring).

    `marks` are the traffic marks (`summary["marks"]`, [] without traffic), `origin`
    the epoch second that `offset_s` values count from and `logged` whether traffic was
    recorded (its marks then tell whether a fault happened).
    """
    faults: list[_Draft] = []
    for _, result in activity_results(journal):
        if not is_fault_action(result):
            continue
        output = as_dict(result.get("output"))
        kills = output.get("kills")
        if isinstance(kills, list) and kills:
            faults += [_fault_from_output({**result, "output": k}) for k in kills]
        elif any(
            isinstance(output.get(k), dict)
            for k in ("deleted", "upgraded", "killed", "partitioned", "hung", "drained", "lost")
        ):
            faults.append(_fault_from_output(result))
        else:  # failed, or ran dry: no fault in its output
            faults.append(_new_fault(result))
    good = [m for m in marks if isinstance(m, dict) and number(m.get("t")) is not None]
    good.sort(key=lambda m: float(m["t"]))
    _attach_marks(faults, good)
    faults.sort(key=lambda f: (f.at is None, f.at or 0.0))
    _milestones_from_marks(faults, good)
    return [_finish(f, origin, logged) for f in faults]
