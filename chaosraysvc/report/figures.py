"""Compute what a report shows, as frozen dataclasses: the run's figures.

`run_figures(run)` reads a `RunInput` (the journal and its traffic summary) once into a
`RunFigures`; templates, the chart, the metrics and the controls read its attributes.
`RunFigures.to_json()` is the report's JSON format (`--format json`)::

    {"id": "run-1", "journal": "..." | null, "traffic_log": "..." | null,
     "figures_from": "traffic log" | "journal" | null, "warnings": [...],
     "interrupted": "" | "<why there is no journal>", "missing_journal": "..." | null,
     "unknown": [<what a run without journal cannot tell>...],
     "origin": <epoch that offsets count from>, "origin_label": "traffic start",
     "deletion_offset_s": <offset of the first deletion> | null, "deletion_label": "...",
     "verdict": {...}, "about": {...}, "risks": {...}, "faults": [...],
     "traffic": {...} | null, "phases": [...], "steady_state": {...},
     "activities": [...], "trend": {...}}

Two time bases are used and always named: offsets ("+5.3 s", the chart's lower axis)
count from `origin` (the traffic start); recovery milestones count from the deletion
(`deletion_offset_s` on the first base; the chart's upper axis).

Each part is owned by the module that computes it: `verdict` is
`chaosraysvc.report.verdict.Verdict`, `faults` are `chaosraysvc.report.faults.Fault`,
`steady_state` is `chaosraysvc.report.steady.SteadyState` (tolerances with their
placeholders resolved), `risks` is `chaosraysvc.report.risks.Risks` (the doctor's HA
risks as the run recorded them), `traffic` the typed
`chaosraysvc.traffic.summary.TrafficSummary` as shown (masked, without the per-second
timeline, which only the chart uses; missing keys of older journals get its defaults);
`about`, `activities`, `phases` and `trend` (the run's row of a trend table) are here.

No configuration value is shown except the chaosraysvc target keys, and never the
experiment's `secrets`; outputs and error messages are shortened and masked.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from chaosraysvc import __version__
from chaosraysvc.config import TARGET_KEYS
from chaosraysvc.report.faults import Fault, find_faults
from chaosraysvc.report.load import RunInput, chaosraysvc_extension
from chaosraysvc.report.risks import Risks, recorded_risks
from chaosraysvc.report.steady import SteadyState, steady_state
from chaosraysvc.report.values import (
    activity_name,
    activity_results,
    as_dict,
    as_list,
    epoch,
    mask,
    number,
    output_text,
    short_error,
    utc,
)
from chaosraysvc.report.verdict import Verdict, judge
from chaosraysvc.traffic.summary import PhaseFigures, TrafficSummary

__all__ = [
    "About",
    "ActivityRow",
    "PhaseRow",
    "RunFigures",
    "TargetValue",
    "TrendRow",
    "Version",
    "run_figures",
    "trend_row",
]


@dataclass(frozen=True)
class TargetValue:
    """A target key's value as the report shows it, and where it comes from."""

    value: str
    env: str = ""  # the environment variable that held it, when its default is shown
    source: str = ""


@dataclass(frozen=True)
class Version:
    """A component's version and where it was read (the journal, or this machine)."""

    version: str
    source: str = ""


@dataclass(frozen=True)
class About:
    """What was run against what: the experiment, its target, traffic, versions and times.

    `traffic` holds the traffic settings the run recorded (mode, rate, concurrency,
    timeout_s, url, path, endpoints: those set), then `method` and `accepted`.
    """

    title: str
    description: str = ""
    tags: list[str] = field(default_factory=list)
    target: dict[str, TargetValue] = field(default_factory=dict)
    traffic: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Version] = field(default_factory=dict)
    platform: str = ""
    node: str = ""
    started: str = ""
    ended: str = ""
    duration_s: float | None = None


@dataclass(frozen=True)
class ActivityRow:
    """One activity of the method or the rollbacks, as the report lists it."""

    phase: str
    name: str
    type: str
    status: str
    start: str
    offset_s: float | None
    duration_s: float | None
    result: str
    note: str = ""  # a traffic summary taken mid-run says so
    error: str = ""


@dataclass(frozen=True)
class PhaseRow(PhaseFigures):
    """A traffic phase (baseline, outage, recovery, after) with its name."""

    name: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the phase's JSON object, its name first."""
        return {"name": self.name, **super().to_json()}


@dataclass(frozen=True)
class TrendRow:
    """A run's row of a trend table: date, experiment, verdict, requests, failures, times.

    `failure_time_s` is None when the run's summary predates the failure time (and
    without traffic), 0.0 when no request failed.
    """

    id: str
    date: str
    experiment: str
    outcome: str
    verdict: str
    requests: int | None
    failures: int | None
    failure_window_s: float | None
    failure_time_s: float | None
    recovery_s: float | None
    recovered: bool | None
    journal: str | None


@dataclass(frozen=True)
class RunFigures:
    """Every figure of one run (see the module docstring)."""

    id: str
    journal: str | None
    traffic_log: str | None
    figures_from: str | None
    warnings: list[str]
    interrupted: str
    missing_journal: str | None
    unknown: list[str]
    origin: float | None
    origin_label: str
    deletion_offset_s: float | None
    deletion_label: str
    verdict: Verdict
    about: About
    risks: Risks
    faults: list[Fault]
    traffic: TrafficSummary | None
    phases: list[PhaseRow]
    steady_state: SteadyState
    activities: list[ActivityRow]
    serve_view: dict[str, Any] | None = None  # `controls/serve_metrics.py`'s record

    @property
    def trend(self) -> TrendRow:
        """Return the run's row of a trend table (`trend_row`)."""
        return trend_row(self)

    @property
    def first_fault(self) -> Fault | None:
        """Return the run's first fault that happened (its recovery is the run's)."""
        return next((f for f in self.faults if f.happened), None)

    def to_json(self) -> dict[str, Any]:
        """Return the figures as the report's JSON object (see the module docstring)."""
        return {
            "id": self.id,
            "journal": self.journal,
            "traffic_log": self.traffic_log,
            "figures_from": self.figures_from,
            "warnings": self.warnings,
            "interrupted": self.interrupted,
            "missing_journal": self.missing_journal,
            "unknown": self.unknown,
            "origin": self.origin,
            "origin_label": self.origin_label,
            "deletion_offset_s": self.deletion_offset_s,
            "deletion_label": self.deletion_label,
            "verdict": self.verdict.to_json(),
            "about": asdict(self.about),
            "risks": self.risks.to_json(),
            "faults": [f.to_json() for f in self.faults],
            "traffic": _traffic_json(self.traffic),
            "phases": [p.to_json() for p in self.phases],
            "steady_state": self.steady_state.to_json(),
            "activities": [asdict(a) for a in self.activities],
            "trend": asdict(self.trend),
        } | ({"serve_metrics": self.serve_view} if self.serve_view else {})


def _shown(summary: TrafficSummary | None) -> TrafficSummary | None:
    """Return the summary a report shows: masked, without the timeline (the chart's) and
    without what the engine adds for the journal (log path, settings, running)."""
    if summary is None:
        return None
    shown = replace(summary, timeline=None, log=None, settings=None, running=None)
    return TrafficSummary.from_json(mask(shown.to_json()))


def _traffic_json(shown: TrafficSummary | None) -> dict[str, Any] | None:
    if shown is None:
        return None
    # Shown (as null) when the run did not say whether the failure limit stopped it.
    return shown.to_json() | {"max_failures_exceeded": shown.max_failures_exceeded}


# --- what was run against what ------------------------------------------------------


def _config_value(configuration: dict[str, Any], key: str) -> TargetValue | None:
    raw = configuration.get(key)
    if raw is None:
        return None
    if isinstance(raw, dict):
        if raw.get("type") == "env":
            default = raw.get("default")
            shown = "" if default is None else str(mask(str(default)))
            return TargetValue(shown, env=str(raw.get("key") or ""), source="default")
        return TargetValue("(not a plain value)")
    return TargetValue(str(mask(str(raw))), source="experiment")


def _installed(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _version(recorded: Any, dist: str) -> Version:
    if isinstance(recorded, str) and recorded:
        return Version(recorded, "journal")
    here = _installed(dist)
    if here:
        return Version(here, "installed where the report was made")
    return Version("unknown")


def _versions(journal: dict[str, Any]) -> dict[str, Version]:
    recorded = as_dict(chaosraysvc_extension(journal).get("versions"))
    versions = {
        "ray": _version(recorded.get("ray"), "ray"),
        "chaosraysvc": _version(recorded.get("chaosraysvc"), "chaosraysvc"),
        "chaoslib": _version(journal.get("chaoslib-version"), "chaostoolkit-lib"),
        "chaostoolkit": _version(recorded.get("chaostoolkit"), "chaostoolkit"),
    }
    if versions["chaosraysvc"].version == "unknown":
        versions["chaosraysvc"] = Version(__version__, "the report tool")
    return versions


def _about(run: RunInput, summary: TrafficSummary | None, faults: list[Fault]) -> About:
    journal = run.journal
    experiment = as_dict(journal.get("experiment"))
    configuration = as_dict(experiment.get("configuration"))
    target = {key: v for key in TARGET_KEYS if (v := _config_value(configuration, key))}
    used = next((f.target for f in faults if f.target), "")
    if used:
        target["raysvc_target"] = TargetValue(used, source="the delete action")
    recorded = as_dict(chaosraysvc_extension(journal).get("target"))
    for key, name in (
        ("raysvc_target", "target"),
        ("rayservice_name", "rayservice"),
        ("rayservice_namespace", "namespace"),
    ):
        if isinstance(recorded.get(name), str) and recorded[name]:
            target[key] = TargetValue(str(mask(recorded[name])), source="the run's configuration")
    traffic_run = summary.run if summary is not None else {}
    start, end = epoch(journal.get("start")), epoch(journal.get("end"))
    duration = number(journal.get("duration"))
    if run.interrupted:  # no journal: the traffic's own span is all there is
        start, end = number(traffic_run.get("started")), number(traffic_run.get("ended"))
        duration = number(traffic_run.get("duration_s"))
    if duration is None and start is not None and end is not None:
        duration = round(end - start, 3)
    untitled = "(unknown experiment: no journal)" if run.interrupted else "(untitled experiment)"
    return About(
        title=str(experiment.get("title") or untitled),
        description=str(experiment.get("description") or ""),
        tags=[str(t) for t in as_list(experiment.get("tags"))],
        target=target,
        traffic={
            k: mask(traffic_run[k])
            for k in ("mode", "rate", "concurrency", "timeout_s", "url", "path", "endpoints")
            if traffic_run.get(k) not in (None, "", [])
        }
        | _request_shape(traffic_run),
        versions=_versions(journal),
        platform=str(journal.get("platform") or ""),
        node=str(journal.get("node") or ""),
        started=utc(start),
        ended=utc(end),
        duration_s=duration,
    )


def _request_shape(traffic_run: dict[str, Any]) -> dict[str, str]:
    """Return the method and the accepted statuses ("any 2xx" when none are listed)."""
    if not traffic_run:
        return {}
    statuses = [str(c) for c in as_list(traffic_run.get("expected_status"))]
    return {
        "method": str(traffic_run.get("method") or "POST"),
        "accepted": ", ".join(statuses) if statuses else "any 2xx",
    }


# --- activities ---------------------------------------------------------------------


def _snapshot(output: dict[str, Any], traffic: TrafficSummary | None, origin: float | None) -> str:
    """Say that a traffic summary taken mid-run counts fewer requests than the report.

    `traffic_summary` reads the log while the traffic still runs; the report's totals
    count it to the stop. Returns "" when the summary is the whole run.
    """
    run = as_dict(output.get("run"))
    n = number(output.get("requests"))
    total = number(traffic.requests) if traffic is not None else None
    if run.get("complete") is not False and (total is None or n == total):
        return ""
    ended = number(run.get("ended"))
    stopped = number(traffic.run.get("ended")) if traffic is not None else None
    when = f" at +{ended - origin:.1f} s" if ended is not None and origin is not None else ""
    if run.get("complete") is False:
        text = f"a snapshot{when}, taken while the traffic still ran"
        if total is not None and n is not None and total != n:
            until = f" to its stop at +{stopped - origin:.1f} s" if stopped and origin else ""
            text += f"; the report's totals count all {int(total):,} requests{until}"
        return text
    return (
        f"the whole run as it was summarized{when}; the traffic log read for this report "
        f"holds {int(total or 0):,} requests (a trimmed or another copy of the log?)"
    )


def _activities(
    journal: dict[str, Any], origin: float | None, traffic: TrafficSummary | None
) -> list[ActivityRow]:
    rows = []
    for phase, result in activity_results(journal):
        start = epoch(result.get("start"))
        output = result.get("output")
        note = ""
        if isinstance(output, dict) and "requests" in output and "failures" in output:
            note = _snapshot(output, traffic, origin)
        rows.append(
            ActivityRow(
                phase=phase,
                name=activity_name(result),
                type=str(as_dict(result.get("activity")).get("type") or ""),
                status=str(result.get("status") or "unknown"),
                start=utc(start),
                offset_s=round(start - origin, 3) if start and origin else None,
                duration_s=number(result.get("duration")),
                result=output_text(result),
                note=note,
                error=short_error(result.get("exception")),
            )
        )
    return rows


# --- a run without journal ----------------------------------------------------------


def _unknowns() -> list[str]:
    """Say plainly what a run reported from its traffic log alone cannot tell."""
    return [
        "whether the steady-state hypothesis held before and after the fault: no verdict "
        "is claimed",
        "the experiment, its configuration and target, and the versions it ran with",
        "the results of the probes and actions, and whether the rollbacks ran",
        "what happened after the traffic log ends (recovery milestones not logged by then "
        "may have come later)",
    ]


# --- everything ---------------------------------------------------------------------


def _phase_rows(shown: TrafficSummary | None) -> list[PhaseRow]:
    if shown is None:
        return []
    return [
        PhaseRow(name=name, **{f: getattr(phase, f) for f in _PHASE_FIELDS})
        for name, phase in shown.phases.items()
        if phase is not None
    ]


_PHASE_FIELDS = [f.name for f in fields(PhaseFigures)]


def run_figures(run: RunInput, index: int = 0) -> RunFigures:
    """Return every figure of one run (see the module docstring)."""
    journal = run.journal
    summary = TrafficSummary.from_json(run.summary) if run.summary is not None else None
    traffic = _shown(summary)
    origin = number(summary.run.get("started")) if summary is not None else None
    origin_label = "traffic start"
    if origin is None:
        origin, origin_label = epoch(journal.get("start")), "run start"
    faults = find_faults(
        journal,
        mask(summary.marks) if summary is not None else [],
        origin,
        logged=summary is not None,
    )
    log_end = number(summary.run.get("ended")) if summary is not None else None
    if run.interrupted:  # the recovery the traffic log does not reach is unknown
        faults = [f.cut_off_at(log_end) for f in faults]
    steady = steady_state(journal)
    deleted = next((f for f in faults if f.happened and f.offset_s is not None), None)
    return RunFigures(
        id=f"run-{index + 1}",
        journal=str(run.journal_path) if run.journal_path else None,
        traffic_log=str(run.traffic_path) if run.traffic_path else None,
        figures_from=run.summary_source or None,
        warnings=[mask(w) for w in run.warnings],
        interrupted=mask(run.interrupted),
        missing_journal=str(run.missing_journal) if run.missing_journal else None,
        unknown=_unknowns() if run.interrupted else [],
        origin=origin,
        origin_label=origin_label,
        deletion_offset_s=deleted.offset_s if deleted else None,
        deletion_label=_fault_label(deleted) if deleted else "",
        verdict=judge(
            journal,
            steady,
            traffic,
            faults,
            interrupted=run.interrupted,
            log_end_s=round(log_end - origin, 3) if log_end and origin else None,
            evidence=[mask(e) for e in run.evidence],
        ),
        about=_about(run, summary, faults),
        risks=recorded_risks(journal),
        faults=faults,
        traffic=traffic,
        phases=_phase_rows(traffic),
        steady_state=steady,
        activities=_activities(journal, origin, traffic),
        serve_view=_serve_view(journal, origin),
    )


def _serve_view(journal: dict[str, Any], origin: float | None) -> dict[str, Any] | None:
    """Serve's own view per phase, as the serve_metrics control recorded it, each phase's
    start as an offset from the report's origin."""
    recorded = chaosraysvc_extension(journal).get("serve_metrics") if journal else None
    if not isinstance(recorded, dict):
        return None
    rows = []
    for row in recorded.get("phases") or []:
        if isinstance(row, dict):
            start = number(row.get("start"))
            offset = round(start - origin, 1) if start is not None and origin else None
            rows.append({**row, "offset_s": offset})
    return {**recorded, "phases": rows}


def trend_row(figures: RunFigures) -> TrendRow:
    """Return one trend-table row: date, experiment, verdict, requests, failures, times.

    `failure_time_s` is None when the run's summary predates the failure time (and
    without traffic), 0.0 when no request failed.
    """
    traffic = figures.traffic
    if traffic is not None and traffic.failure_time is not None:
        failure_time_s = number(traffic.failure_time.seconds)
    else:
        failure_time_s = 0.0 if traffic is not None and traffic.failures == 0 else None
    window = traffic.longest_failure_window if traffic is not None else None
    first = figures.first_fault
    return TrendRow(
        id=figures.id,
        date=figures.about.started,
        experiment=figures.about.title,
        outcome=figures.verdict.outcome,
        verdict=figures.verdict.label,
        requests=traffic.requests if traffic is not None else None,
        failures=traffic.failures if traffic is not None else None,
        failure_window_s=((window.duration_s if window else None) or 0.0)
        if traffic is not None
        else None,
        failure_time_s=failure_time_s,
        recovery_s=first.recovery_s if first else None,
        recovered=first.recovered if first else None,
        journal=figures.journal,
    )


_FAULT_WORDS = {
    "lose_node": "the node loss",
    "drain_node": "the drain",
    "partition_redis": "the Redis partition",
    "hang_redis": "the Redis pause",
    "kill_redis_primary": "the Redis primary's deletion",
    "kill_gcs_server": "the GCS kill",
    "upgrade_rayservice": "the upgrade",
}


def _fault_label(fault: Fault) -> str:
    """What the chart's upper axis counts from: "the head pod deletion", "the node loss"..."""
    said = _FAULT_WORDS.get(fault.func) or _FAULT_WORDS.get(fault.action)
    return said or f"the {fault.role or '?'} pod deletion"
