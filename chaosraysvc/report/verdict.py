"""Say in words whether the service stayed up: the outcome, a headline and the facts.

This is the one place that decides a run's verdict; the report, the metrics control and
the verdict control (which sets the journal's status, so `chaos run` exits 1 and notifies
`run-failed`) all take it from here. Outcomes, from the journal's `status` and `deviated`
and then from what the method did:

- `passed`: the run completed, its fault was injected, every action of the method
  succeeded, the traffic log agrees with the journal, and the steady state held before
  and after the fault;
- `deviated`: the steady state did not hold after the fault;
- `aborted`: the run was stopped (a failure limit or a continuous hypothesis);
- `failed`: the experiment could not run to its end, e.g. the steady state did not
  hold before the fault, so no fault was injected ("not tested", whether chaoslib ended
  the run `completed` or `failed`); or the fault was
  injected but its action failed (e.g. the recovery did not come in time);
- `inconclusive`: the run proves nothing about the fault: a fault action failed before
  its fault, the target refused it, it ran dry, another action of the method failed, or
  (for a run that would otherwise pass) the evidence is incomplete, e.g. a traffic log
  holding fewer requests than the journal counted; the reason names the action and its
  error, or what is missing;
- `interrupted`: stopped by Ctrl-C or a control, or killed before the journal was
  written (the run is then reported from its traffic log alone and no hypothesis
  verdict is claimed); `unknown`: no usable status.

Chaos Toolkit itself lets a run whose action failed end `completed`, not deviated: a
failed action is recorded in the journal and the run goes on. A fault that never
happened therefore says nothing about the service, whatever the steady state did.

The facts are sentences for people: the steady state before and after, each probe
that failed, each fault and its recovery (only faults that happened are told as such),
each action that failed, what evidence is missing, and how the traffic fared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chaosraysvc.report.faults import (
    DRAIN,
    FAILOVER,
    HANG,
    KILL_GCS,
    LOSE,
    PARTITION,
    Fault,
    is_fault_action,
)
from chaosraysvc.report.load import chaosraysvc_extension
from chaosraysvc.report.steady import SteadyState
from chaosraysvc.report.values import (
    activity_name,
    activity_results,
    as_dict,
    short_error,
)
from chaosraysvc.traffic.summary import FailureTime, TrafficSummary

__all__ = [
    "FAILS_THE_RUN",
    "MILESTONE_WORDS",
    "NO_JOURNAL_STATUS",
    "OUTCOMES",
    "Verdict",
    "judge",
    "verdict",
]

OUTCOMES = ("passed", "deviated", "aborted", "failed", "inconclusive", "interrupted", "unknown")
# Outcomes of a run that chaoslib ended "completed" but that must not count as one: the
# verdict control marks such a journal "failed".
FAILS_THE_RUN = ("failed", "inconclusive")
MILESTONE_WORDS = {
    "pod_ready": "new pod ready",
    "endpoints_restored": "endpoints restored",
    "applications_running": "applications RUNNING",
}


@dataclass(frozen=True)
class Verdict:
    """The verdict of a run: its outcome (one of OUTCOMES), in words, and the facts."""

    outcome: str
    label: str
    reason: str
    status: str
    deviated: bool
    steady_state_before: bool | None
    steady_state_after: bool | None
    facts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"verdict outcome {self.outcome!r} is not one of {OUTCOMES}")

    @property
    def headline(self) -> str:
        """Return "<label>: <reason>"."""
        return f"{self.label}: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        """Return the verdict as the JSON object reports and the verdict control use."""
        return {
            "outcome": self.outcome,
            "label": self.label,
            "reason": self.reason,
            "headline": self.headline,
            "status": self.status,
            "deviated": self.deviated,
            "steady_state_before": self.steady_state_before,
            "steady_state_after": self.steady_state_after,
            "facts": self.facts,
        }


_MET = {True: "met", False: "NOT met", None: "not checked"}
NO_JOURNAL_STATUS = "interrupted — no journal; reported from the traffic log alone"


def _count(n: Any) -> str:
    return f"{int(n):,}" if isinstance(n, int | float) else "?"


def _failing_clause(failing: FailureTime | None) -> str:
    """Say how long requests failed and how fast they went (the failure time), or ""."""
    seconds = failing.seconds if failing is not None else None
    if failing is None or seconds is None:
        return ""
    text = f" over {seconds:.1f} s with failures"
    rps, before = failing.requests_rps, failing.before_fault_rps
    if rps is not None:
        text += f" ({rps:.1f} requests/s in those seconds"
        text += f", {before:.1f}/s before the fault)" if before is not None else ")"
    return text


def _traffic_sentence(traffic: TrafficSummary | None, incomplete: bool = False) -> str:
    if traffic is None:
        return "No traffic was recorded with this run."
    n, failed = traffic.requests or 0, traffic.failures or 0
    if not n:
        return "The traffic log holds no request."
    if incomplete:
        return (
            f"The traffic log holds {_count(n)} requests, {_count(failed)} failed, but it is "
            "incomplete: the figures below leave out the requests it lost."
        )
    if not failed:
        return f"Serve answered all {_count(n)} requests (0 failed)."
    text = f"{_count(failed)} of {_count(n)} requests failed ({100.0 * failed / n:.2f} %)"
    text += _failing_clause(traffic.failure_time)
    window = traffic.longest_failure_window
    if window is not None:
        text += f"; the longest failure window lasted {window.duration_s or 0:.1f} s"
        if window.ongoing:
            text += " and was still open when the log ends"
    return text + "."


def _dry(journal: dict[str, Any]) -> str:
    """Return what `chaos run --dry` skipped the actions of ("actions", "activities"), or ""."""
    dry = as_dict(journal.get("experiment")).get("dry")
    value = str(getattr(dry, "value", dry) or "")  # chaoslib's Dry while the run is on
    return value if value in ("actions", "activities") else ""


def _why_not(fault: Fault, dry: str) -> str:
    """Say why the fault of `fault` did not happen: "action 'x' failed: <error>"."""
    action = f"action '{fault.action or '?'}'"
    if fault.dry_run:
        return f"{action} ran as a dry run (dry_run=true): nothing was changed"
    if fault.status == "failed":
        return f"{action} failed: {fault.error or 'no error was recorded'}"
    if dry:
        return f"{action} was skipped by `chaos run --dry {dry}`"
    if fault.status == "succeeded":
        return f"{action} succeeded but its result records no fault"
    return f"{action} did not finish (status {fault.status or 'not recorded'})"


def _fault_sentence(fault: Fault, dry: str = "") -> str:
    sentence = _what_happened(fault, dry)
    if fault.injected and fault.failover_s:
        steps = {"primary_elected": "the Sentinels named a new primary",
                 "gcs_reconnected": "the GCS was connected to it"}  # fmt: skip
        said = [f"{steps[m]} {s:.1f} s" for m, s in fault.failover_s.items() if m in steps]
        who = f" ({fault.new_primary})" if fault.new_primary else ""
        sentence += f" Failover{who}: {', '.join(said)} after the deletion."
    if fault.injected and fault.node_loss_s:
        steps = {"node_not_ready": "NotReady", "endpoints_dropped": "its pods out of the serve "
                 "Service", "pods_evicted": "its pods evicted", "node_deleted": "the Node "
                 "deleted"}  # fmt: skip
        in_order = sorted(fault.node_loss_s.items(), key=lambda item: item[1])
        said = [f"{steps[m]} {s:.1f} s" for m, s in in_order if m in steps]
        sentence += f" Node loss: {', '.join(said)} after the loss."
    if fault.injected and fault.budget_held_s:
        said = [f"{pod} for {s:.1f} s" for pod, s in sorted(fault.budget_held_s.items())]
        sentence += f" A PodDisruptionBudget held the eviction of {', '.join(said)}."
    return sentence


def _what_happened(fault: Fault, dry: str) -> str:
    if not fault.injected:
        why = _why_not(fault, dry)
        if fault.injected is None:
            return f"No fault is known to have been injected: {why}."
        return f"No fault was injected: {why}."
    pod = fault.pod or "(name not recorded)"
    if fault.role == "rayservice":
        text = f"The RayService was upgraded from cluster {pod}"
    elif HANG in (fault.func, fault.action):
        text = f"The Redis pod {pod} stopped answering (CLIENT PAUSE ALL)"
    elif PARTITION in (fault.func, fault.action):
        text = f"The Redis pod {pod} was cut off from the Ray pods (NetworkPolicy)"
    elif FAILOVER in (fault.func, fault.action):
        text = f"The Redis primary's pod {pod} was deleted"
    elif LOSE in (fault.func, fault.action):
        nodes = ", ".join(fault.lost_nodes) or "?"
        several = len(fault.lost_nodes) > 1
        text = (f"The {'nodes' if several else 'node'} {nodes} of the {fault.role or '?'} pod "
                f"{pod} {'were' if several else 'was'} lost")  # fmt: skip
    elif DRAIN in (fault.func, fault.action):
        text = f"The node of the {fault.role or '?'} pod {pod} was drained (cordon, evictions)"
    elif KILL_GCS in (fault.func, fault.action):
        text = f"The GCS server in the {fault.role or '?'} pod {pod} was killed"
    else:
        text = f"The {fault.role or '?'} pod {pod} was deleted"
    if fault.offset_s is not None:
        text += f" {fault.offset_s:.1f} s into the traffic"
    if fault.cut_off:
        reached = [
            f"{MILESTONE_WORDS[m]} {s:.1f} s" for m, s in fault.seconds_to.items() if s is not None
        ]
        missing = ", ".join(MILESTONE_WORDS[m] for m in fault.missing)
        after = fault.log_end_after_s
        when = f", {after:.1f} s after the fault" if after is not None else ""
        done = f"reached {', '.join(reached)} after the fault but " if reached else ""
        return (
            f"{text}; when the traffic log ends{when}, the service had {done}not yet reached "
            f"{missing}: whether and when it recovered is unknown."
        )
    if fault.recovered:
        steps = ", ".join(
            f"{MILESTONE_WORDS[m]} {s:.1f} s" for m, s in fault.seconds_to.items() if s is not None
        )
        return f"{text}; the service recovered in {fault.recovery_s:.1f} s ({steps})."
    if not fault.awaited:
        return f"{text}; recovery was not awaited."
    missing = ", ".join(MILESTONE_WORDS[m] for m in fault.missing)
    return f"{text}; it did not recover while the run watched (never reached: {missing})."


def _probe_sentences(steady: SteadyState, event: str) -> list[str]:
    facts = []
    for when, label in (("after", "After"), ("before", "Before")):
        for probe in steady.probes:
            cell = probe.after if when == "after" else probe.before
            if cell is not None and (cell.met is False or cell.status == "failed"):
                got = cell.value or cell.error or "no value"
                tolerance = probe.tolerance
                facts.append(
                    f"{label} the {event}, {probe.name} returned {got} (tolerance {tolerance})."
                )
    return facts


def _outcome(status: str, deviated: bool, before: bool | None) -> tuple[str, str, str]:
    if deviated:
        return "deviated", "Deviated", "the steady state did not hold after the fault"
    # chaoslib ends a run whose hypothesis before was out of tolerance "completed" (not
    # deviated) when every probe ran, "failed" when one errored: the method never ran
    if before is False and status in ("completed", "failed"):
        return "failed", "Not tested", "the steady state did not hold before the fault"
    if status == "completed":
        return "passed", "Passed", "the steady state held before and after the fault"
    if status == "aborted":
        return "aborted", "Aborted", "the run was stopped before its end"
    if status == "failed":
        return "failed", "Failed", "the experiment could not run to its end"
    if status == "interrupted":
        return "interrupted", "Interrupted", "the run was stopped before its end"
    why = f"the journal's status is {status or 'missing'} (an incomplete run?)"
    return "unknown", "Unknown", why


def _failed_actions(journal: dict[str, Any]) -> list[str]:
    """Return "action 'x' failed: <error>" for each failed method action that is no fault."""
    return [
        f"action '{activity_name(result)}' failed: "
        f"{short_error(result.get('exception')) or 'no error was recorded'}"
        for phase, result in activity_results(journal)
        if phase == "method"
        and result.get("status") == "failed"
        and as_dict(result.get("activity")).get("type") == "action"
        and not is_fault_action(result)
    ]


def _settle(
    found: tuple[str, str, str],
    faults: list[Fault],
    journal: dict[str, Any],
    evidence: list[str],
    before: bool | None,
) -> tuple[tuple[str, str, str], list[str]]:
    """Return the outcome once the method's faults, actions and evidence are weighed, and facts.

    An aborted, interrupted, untested or unknown run keeps its outcome: it claims no
    pass. Otherwise a fault that did not happen or another failed action makes the run
    inconclusive; a fault whose action failed after it was injected fails a run that
    would pass; incomplete evidence makes a would-be pass inconclusive.
    """
    outcome = found[0]
    dry = _dry(journal)
    missing = [_why_not(f, dry) for f in faults if f.injected is False]
    unknown = [_why_not(f, dry) for f in faults if f.injected is None]
    failed = _failed_actions(journal)
    facts = [f"The method did not run as written: {a}." for a in failed]
    after = [
        f"action '{f.action}' failed after its fault was injected: {f.error}"
        for f in faults
        if f.injected and f.status == "failed"
    ]
    facts += [f"{a[:1].upper()}{a[1:]}." for a in after + evidence]
    keeps = outcome in ("aborted", "interrupted", "unknown") or (
        outcome == "failed" and before is False
    )
    if keeps:
        return found, facts
    why = []
    if missing:
        why.append(f"the fault was not injected: {'; '.join(missing)}")
    if unknown:
        why.append(f"the fault is not known to have been injected: {'; '.join(unknown)}")
    if failed:
        why.append(f"the method did not run as written: {'; '.join(failed)}")
    if why:
        if outcome == "deviated":
            facts.append("The steady state did not hold after the method, with no fault injected.")
        return ("inconclusive", "Inconclusive", "; ".join(why)), facts
    if after and outcome in ("passed", "failed"):
        return ("failed", "Failed", "; ".join(after)), facts
    if evidence and outcome == "passed":
        reason = f"the evidence is incomplete: {'; '.join(evidence)}"
        return ("inconclusive", "Inconclusive", reason), facts
    return found, facts


def _no_journal_facts(interrupted: str, log_end_s: float | None) -> list[str]:
    facts = [
        f"No journal: {interrupted}. Chaos Toolkit writes the journal when a run ends, so "
        "this run was stopped (killed?) before; only its traffic log survived.",
        "The steady-state hypothesis was not judged here: its verdict is unknown.",
    ]
    if log_end_s is not None:
        facts.append(f"The traffic log ends {log_end_s:.1f} s after the traffic started.")
    return facts


def judge(
    journal: dict[str, Any],
    steady: SteadyState,
    traffic: TrafficSummary | None,
    faults: list[Fault],
    interrupted: str = "",
    log_end_s: float | None = None,
    evidence: list[str] | None = None,
) -> Verdict:
    """Return the verdict of a run.

    Its `outcome` is one of OUTCOMES, `label` "Passed", "Inconclusive", "Not tested",
    ..., then `reason`, `headline` ("<label>: <reason>"), `status`, `deviated`,
    `steady_state_before` and `steady_state_after` (True, False or None when not
    checked) and `facts`. `faults` are those of `chaosraysvc.report.faults.find_faults`;
    `evidence` says what evidence is missing or contradicts the journal (e.g. a traffic
    log with fewer requests than the journal counted). `interrupted` (why there is no
    journal) makes it the verdict of a run reported from its traffic log alone, whose log
    ends `log_end_s` after the traffic start.
    """
    status = str(journal.get("status") or "")
    deviated = bool(journal.get("deviated"))
    before, after = steady.before_met, steady.after_met
    # the verdict control may have failed a run chaoslib ended "completed": judge the latter
    settled = as_dict(chaosraysvc_extension(journal).get("verdict"))
    found = _outcome(str(settled.get("status_was") or status), deviated, before)
    (outcome, label, reason), problems = _settle(found, faults, journal, evidence or [], before)
    event = "fault" if any(f.injected for f in faults) or not faults else "method"
    facts = [f"Steady state before the {event}: {_MET[before]}; after: {_MET[after]}."]
    if interrupted:
        outcome, label, status = "interrupted", "Interrupted", NO_JOURNAL_STATUS
        reason = (
            "the run was interrupted before its journal was written: reported from the "
            "traffic log alone, with no hypothesis verdict"
        )
        facts = _no_journal_facts(interrupted, log_end_s)
        problems = []
    facts += _probe_sentences(steady, event)
    dry = _dry(journal)
    facts += [_fault_sentence(f, dry) for f in faults]
    facts += problems
    facts.append(_traffic_sentence(traffic, incomplete=bool(evidence)))
    if traffic is not None and traffic.max_failures_exceeded:
        facts.append("The traffic's failure limit (max_failures) was crossed: the run was aborted.")
    return Verdict(
        outcome=outcome,
        label=label,
        reason=reason,
        status=status or "unknown",
        deviated=deviated,
        steady_state_before=before,
        steady_state_after=after,
        facts=facts,
    )


def verdict(
    journal: dict[str, Any],
    steady: SteadyState,
    traffic: TrafficSummary | None,
    faults: list[Fault],
    interrupted: str = "",
    log_end_s: float | None = None,
    evidence: list[str] | None = None,
) -> dict[str, Any]:
    """Return `judge(...)`'s verdict as JSON (the keys of `Verdict.to_json`)."""
    return judge(journal, steady, traffic, faults, interrupted, log_end_s, evidence).to_json()
