"""Say in words whether the service stayed up: the outcome, a headline and the facts.

Outcomes, from the journal's `status` and `deviated`:

- `passed`: the run completed and the steady state held before and after the fault;
- `deviated`: the steady state did not hold after the fault;
- `aborted`: the run was stopped (a failure limit or a continuous hypothesis);
- `failed`: the experiment could not run to its end, e.g. the steady state did not
  hold before the fault, so no fault was injected ("not tested");
- `interrupted`: stopped by Ctrl-C or a control, or killed before the journal was
  written (the run is then reported from its traffic log alone and no hypothesis
  verdict is claimed); `unknown`: no usable status.

The facts are sentences for people: the steady state before and after, each probe
that failed, each fault and its recovery, and how the traffic fared.
"""

from __future__ import annotations

from typing import Any

from chaosraysvc.report.values import as_dict

__all__ = ["MILESTONE_WORDS", "NO_JOURNAL_STATUS", "OUTCOMES", "verdict"]

OUTCOMES = ("passed", "deviated", "aborted", "failed", "interrupted", "unknown")
MILESTONE_WORDS = {
    "pod_ready": "new pod ready",
    "endpoints_restored": "endpoints restored",
    "applications_running": "applications RUNNING",
}
_MET = {True: "met", False: "NOT met", None: "not checked"}
NO_JOURNAL_STATUS = "interrupted — no journal; reported from the traffic log alone"


def _count(n: Any) -> str:
    return f"{int(n):,}" if isinstance(n, int | float) else "?"


def _traffic_sentence(traffic: dict[str, Any] | None) -> str:
    if not traffic:
        return "No traffic was recorded with this run."
    n, failed = traffic.get("requests") or 0, traffic.get("failures") or 0
    if not n:
        return "The traffic log holds no request."
    if not failed:
        return f"Serve answered all {_count(n)} requests (0 failed)."
    text = f"{_count(failed)} of {_count(n)} requests failed ({100.0 * failed / n:.2f} %)"
    window = as_dict(traffic.get("longest_failure_window"))
    if window:
        text += f"; the longest failure window lasted {window.get('duration_s') or 0:.1f} s"
        if window.get("ongoing"):
            text += " and was still open when the log ends"
    return text + "."


def _fault_sentence(fault: dict[str, Any]) -> str:
    if not fault["confirmed"]:
        error = f": {fault['error']}" if fault["error"] else ""
        return f"The delete action {fault['action']} {fault['status'] or 'did not finish'}{error}."
    who = f"The {fault['role'] or '?'} pod {fault['pod'] or '(name not recorded)'}"
    if fault["dry_run"]:
        return f"{who} was selected in a dry run; nothing was deleted."
    when = f" {fault['offset_s']:.1f} s into the traffic" if fault["offset_s"] is not None else ""
    text = f"{who} was deleted{when}"
    if fault.get("cut_off"):
        reached = [
            f"{MILESTONE_WORDS[m]} {s:.1f} s"
            for m, s in fault["seconds_to"].items()
            if s is not None
        ]
        missing = ", ".join(MILESTONE_WORDS[m] for m in fault["missing"])
        after = fault.get("log_end_after_s")
        when = f", {after:.1f} s after the deletion" if after is not None else ""
        done = f"reached {', '.join(reached)} after the deletion but " if reached else ""
        return (
            f"{text}; when the traffic log ends{when}, the service had {done}not yet reached "
            f"{missing}: whether and when it recovered is unknown."
        )
    if fault["recovered"]:
        steps = ", ".join(
            f"{MILESTONE_WORDS[m]} {s:.1f} s"
            for m, s in fault["seconds_to"].items()
            if s is not None
        )
        return f"{text}; the service recovered in {fault['recovery_s']:.1f} s ({steps})."
    if not fault["awaited"]:
        return f"{text}; recovery was not awaited."
    missing = ", ".join(MILESTONE_WORDS[m] for m in fault["missing"])
    return f"{text}; it did not recover while the run watched (never reached: {missing})."


def _probe_sentences(steady: dict[str, Any]) -> list[str]:
    facts = []
    for when, label in (("after", "After"), ("before", "Before")):
        for probe in steady["probes"]:
            cell = probe[when] or {}
            if cell.get("met") is False or cell.get("status") == "failed":
                got = cell.get("value") or cell.get("error") or "no value"
                tolerance = probe["tolerance"]
                facts.append(
                    f"{label} the fault, {probe['name']} returned {got} (tolerance {tolerance})."
                )
    return facts


def _outcome(status: str, deviated: bool, before: bool | None) -> tuple[str, str, str]:
    if deviated:
        return "deviated", "Deviated", "the steady state did not hold after the fault"
    if status == "completed":
        return "passed", "Passed", "the steady state held before and after the fault"
    if status == "aborted":
        return "aborted", "Aborted", "the run was stopped before its end"
    if status == "failed" and before is False:
        return "failed", "Not tested", "the steady state did not hold before the fault"
    if status == "failed":
        return "failed", "Failed", "the experiment could not run to its end"
    if status == "interrupted":
        return "interrupted", "Interrupted", "the run was stopped before its end"
    why = f"the journal's status is {status or 'missing'} (an incomplete run?)"
    return "unknown", "Unknown", why


def _no_journal_facts(interrupted: str, log_end_s: float | None) -> list[str]:
    facts = [
        f"No journal: {interrupted}. Chaos Toolkit writes the journal when a run ends, so "
        "this run was stopped (killed?) before; only its traffic log survived.",
        "The steady-state hypothesis was not judged here: its verdict is unknown.",
    ]
    if log_end_s is not None:
        facts.append(f"The traffic log ends {log_end_s:.1f} s after the traffic started.")
    return facts


def verdict(
    journal: dict[str, Any],
    steady: dict[str, Any],
    traffic: dict[str, Any] | None,
    faults: list[dict[str, Any]],
    interrupted: str = "",
    log_end_s: float | None = None,
) -> dict[str, Any]:
    """Return the verdict of a run.

    Keys: `outcome` (one of OUTCOMES), `label` ("Passed", "Not tested", ...), `reason`,
    `headline` ("<label>: <reason>"), `status`, `deviated`, `steady_state_before` and
    `steady_state_after` (True, False or None when not checked) and `facts`.
    `interrupted` (why there is no journal) makes it the verdict of a run reported from
    its traffic log alone, whose log ends `log_end_s` after the traffic start.
    """
    status = str(journal.get("status") or "")
    deviated = bool(journal.get("deviated"))
    before, after = steady["before_met"], steady["after_met"]
    outcome, label, reason = _outcome(status, deviated, before)
    facts = [f"Steady state before the fault: {_MET[before]}; after: {_MET[after]}."]
    if interrupted:
        outcome, label, status = "interrupted", "Interrupted", NO_JOURNAL_STATUS
        reason = (
            "the run was interrupted before its journal was written: reported from the "
            "traffic log alone, with no hypothesis verdict"
        )
        facts = _no_journal_facts(interrupted, log_end_s)
    facts += _probe_sentences(steady)
    facts += [_fault_sentence(f) for f in faults]
    facts.append(_traffic_sentence(traffic))
    if traffic and traffic.get("max_failures_exceeded"):
        facts.append("The traffic's failure limit (max_failures) was crossed: the run was aborted.")
    return {
        "outcome": outcome,
        "label": label,
        "reason": reason,
        "headline": f"{label}: {reason}",
        "status": status or "unknown",
        "deviated": deviated,
        "steady_state_before": before,
        "steady_state_after": after,
        "facts": facts,
    }
