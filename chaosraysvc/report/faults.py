"""Find the faults of a run and when the service reached each recovery milestone.

A fault is a pod deleted by one of chaosraysvc's delete actions, a RayService upgraded by
`upgrade_rayservice` (role "rayservice", `pod` the old cluster, `new_pod` the new one), or the
head's GCS process killed by `kill_gcs_server` (the head pod, restarted in place); each kill
of `delete_pods` is a fault of its own.
Its facts come from the action's output in the journal (`deleted`, `deleted_at`,
`recovery.at`) when the action succeeded, and from the traffic log's marks (`fault`,
`pod_ready`, `endpoints_restored`, `applications_running`) otherwise: a delete action that timed
out waiting for recovery leaves no output but its marks. Each fault is a dict::

    {"action": "delete-head-pod", "func": "delete_head_pod", "status": "failed",
     "error": "RecoveryTimeoutError: ...", "pod": "...-head-nbzlw", "role": "head",
     "at": 1795652762.28, "offset_s": 6.59, "target": "sandbox", "grace_period": 0,
     "dry_run": false, "confirmed": true, "awaited": true, "recovered": false,
     "new_pod": "", "milestones_at": {"pod_ready": ...}, "seconds_to": {...},
     "recovery_s": null, "missing": ["pod_ready", ...]}

`confirmed` is False for a failed delete action with no output and no fault mark (it
may have failed before deleting anything); `recovery_s` is the time to the last
milestone when every milestone was reached.
"""

from __future__ import annotations

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

__all__ = ["MILESTONES", "find_faults"]

MILESTONES = ("pod_ready", "endpoints_restored", "applications_running")
UPGRADE = "upgrade_rayservice"  # its fault: role "rayservice", pod = the old cluster's name
KILL_GCS = "kill_gcs_server"  # its fault: the head pod whose GCS process was killed
DELETE_PODS = "delete_pods"  # one fault per kill in its output's `kills`


def _is_delete(result: dict[str, Any]) -> bool:
    """Tell a fault action: a pod deletion, or an upgrade (a whole cluster replaced)."""
    func = activity_func(result)
    return (func.startswith("delete_") and func.endswith("_pod")) or func in (
        UPGRADE,
        KILL_GCS,
        DELETE_PODS,
    )


def _new_fault(result: dict[str, Any] | None) -> dict[str, Any]:
    result = result or {}
    status = str(result.get("status") or "")
    return {
        "action": activity_name(result) if result else "",
        "func": activity_func(result),
        "status": status,
        "error": short_error(result.get("exception")),
        "activity_start": epoch(result.get("start")),
        "activity_end": epoch(result.get("end")),
        "pod": "",
        "role": "",
        "at": None,
        "target": "",
        "grace_period": None,
        "dry_run": False,
        "new_pod": "",
        "milestones_at": {},
        "recovered": None,
        # a delete action that failed was waiting for the recovery when it failed
        "awaited": status == "failed",
    }


def _fault_from_output(result: dict[str, Any]) -> dict[str, Any]:
    output = as_dict(result.get("output"))
    deleted = as_dict(output.get("deleted"))
    upgraded = as_dict(output.get("upgraded"))
    if upgraded:  # the old cluster is what goes; the new cluster replaces it
        deleted = {"name": upgraded.get("from_cluster"), "role": "rayservice"}
    killed = as_dict(output.get("killed"))
    if killed:  # a process inside the pod; the pod restarts in place
        deleted = {"name": killed.get("pod"), "role": killed.get("role")}
    recovery = output.get("recovery")
    fault = _new_fault(result)
    fault.update(
        pod=str(deleted.get("name") or ""),
        role=str(deleted.get("role") or ""),
        at=number(output.get("deleted_at") or output.get("patched_at") or output.get("killed_at")),
        target=str(output.get("target") or ""),
        grace_period=number(output.get("grace_period")),
        dry_run=bool(output.get("dry_run")),
        awaited=False,
    )
    if isinstance(recovery, dict):
        at = as_dict(recovery.get("at"))
        fault["new_pod"] = str(recovery.get("new_pod") or recovery.get("new_cluster") or "")
        fault["milestones_at"] = {m: at[m] for m in MILESTONES if number(at.get(m))}
        fault["recovered"] = bool(recovery.get("recovered"))
        fault["awaited"] = True
    return fault


def _matches(fault: dict[str, Any], mark: dict[str, Any]) -> bool:
    detail = as_dict(mark.get("detail"))
    if fault["pod"]:  # an upgrade's mark names the old cluster
        return (detail.get("pod") or detail.get("cluster")) == fault["pod"]
    if fault["func"] and detail.get("action") not in (None, fault["func"]):
        return False
    t, lo, hi = number(mark.get("t")), fault["activity_start"], fault["activity_end"]
    if t is None or lo is None:
        return False
    return lo - 1.0 <= t <= (hi if hi is not None else float("inf")) + 1.0


def _attach_marks(faults: list[dict[str, Any]], marks: list[dict[str, Any]]) -> None:
    for mark in (m for m in marks if m.get("event") == "fault"):
        detail = as_dict(mark.get("detail"))
        fault = next((f for f in faults if f["at"] is None and _matches(f, mark)), None)
        if fault is None:
            fault = next((f for f in faults if f["pod"] and _matches(f, mark)), None)
        if fault is None:  # a fault injected by something else than a delete action
            fault = _new_fault(None)
            fault["action"] = str(detail.get("action") or "")
            faults.append(fault)
        if fault["at"] is None:
            fault["at"] = float(mark["t"])
        fault["pod"] = fault["pod"] or str(detail.get("pod") or "")
        fault["role"] = fault["role"] or str(detail.get("role") or "")


def _milestones_from_marks(faults: list[dict[str, Any]], marks: list[dict[str, Any]]) -> None:
    for i, fault in enumerate(faults):
        if fault["at"] is None or fault["milestones_at"]:
            continue
        following = (f["at"] for f in faults[i + 1 :] if f["at"] is not None)
        until = next(following, float("inf"))
        for mark in marks:
            event, t = mark.get("event"), float(mark["t"])
            if event in MILESTONES and fault["at"] <= t < until:
                fault["milestones_at"].setdefault(event, t)
                if event == "pod_ready" and not fault["new_pod"]:
                    fault["new_pod"] = str(as_dict(mark.get("detail")).get("pod") or "")
        # a failed delete action was waiting for recovery; the marks tell how far it got
        if fault["recovered"] is None and (fault["milestones_at"] or fault["status"] == "failed"):
            fault["awaited"] = True
            fault["recovered"] = all(m in fault["milestones_at"] for m in MILESTONES)


def _finish(fault: dict[str, Any], origin: float | None) -> dict[str, Any]:
    fault.pop("activity_start")
    fault.pop("activity_end")
    at = fault["at"]
    fault["confirmed"] = at is not None
    if at is None:
        fault["recovered"], fault["awaited"] = None, False
    fault["offset_s"] = round(at - origin, 3) if at is not None and origin is not None else None
    fault["seconds_to"] = {
        m: round(fault["milestones_at"][m] - at, 3)
        if at is not None and m in fault["milestones_at"]
        else None
        for m in MILESTONES
    }
    reached = [s for s in fault["seconds_to"].values() if s is not None]
    fault["recovery_s"] = max(reached) if fault["recovered"] and reached else None
    fault["missing"] = [m for m in MILESTONES if fault["seconds_to"][m] is None]
    return fault


def find_faults(
    journal: dict[str, Any], marks: list[Any], origin: float | None
) -> list[dict[str, Any]]:
    """Return the faults of a run in time order (see the module docstring).

    `marks` are the traffic marks (`summary["marks"]`, [] without traffic) and
    `origin` the epoch second that `offset_s` values count from.
    """
    faults: list[dict[str, Any]] = []
    for _, result in activity_results(journal):
        if not _is_delete(result):
            continue
        output = as_dict(result.get("output"))
        kills = output.get("kills")
        if isinstance(kills, list) and kills:
            faults += [_fault_from_output({**result, "output": k}) for k in kills]
        elif any(isinstance(output.get(k), dict) for k in ("deleted", "upgraded", "killed")):
            faults.append(_fault_from_output(result))
        elif result.get("status") == "failed":
            faults.append(_new_fault(result))
    good = [m for m in marks if isinstance(m, dict) and number(m.get("t")) is not None]
    good.sort(key=lambda m: float(m["t"]))
    _attach_marks(faults, good)
    faults.sort(key=lambda f: (f["at"] is None, f["at"] or 0.0))
    _milestones_from_marks(faults, good)
    return [_finish(f, origin) for f in faults]
