"""Compute what a report shows, as plain JSON-serializable data.

`run_figures(run)` turns a `RunInput` into one dict::

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

A tolerance written as a configuration placeholder (`"${expected_endpoints}"`) shows
its value: recorded by the run (the chaosraysvc extension's `configuration`), written
in the experiment, or inferred from a probe result that met it; else it says that the
value is unknown and which environment variable held it. `risks` are the doctor's HA
risks as the run recorded them (`ha_risks` probe outputs, the extension's `doctor`
entry), or say that the run did not record them.

`verdict` is `chaosraysvc.report.verdict.verdict`, `faults` those of
`chaosraysvc.report.faults`, `traffic` the statistics of `chaosraysvc.traffic.stats`,
read as a typed `chaosraysvc.traffic.summary.TrafficSummary` (missing keys of older
journals get its defaults) and shown as its JSON without the per-second timeline (which
only the chart uses), `trend` the run's row of
a trend table (`trend_row`). Templates only format these values; `--format json`
prints them.

No configuration value is shown except the chaosraysvc target keys, and never the
experiment's `secrets`; outputs and error messages are shortened and masked.
"""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import replace
from typing import Any

from chaosraysvc import __version__
from chaosraysvc.config import TARGET_KEYS
from chaosraysvc.report.faults import find_faults
from chaosraysvc.report.load import RunInput, chaosraysvc_extension
from chaosraysvc.report.values import (
    activity_func,
    activity_name,
    activity_results,
    as_dict,
    as_list,
    epoch,
    mask,
    number,
    output_text,
    short_error,
    short_value,
    utc,
)
from chaosraysvc.report.verdict import judge
from chaosraysvc.traffic.summary import TrafficSummary

__all__ = ["run_figures", "trend_row"]


def _traffic(summary: TrafficSummary | None) -> dict[str, Any] | None:
    """Return the summary a report shows: masked, without the timeline (the chart's) and
    without what the engine adds for the journal (log path, settings, running)."""
    if summary is None:
        return None
    shown = replace(summary, timeline=None, log=None, settings=None, running=None)
    traffic: dict[str, Any] = mask(shown.to_json())
    # Shown (as null) when the run did not say whether the failure limit stopped it.
    return traffic | {"max_failures_exceeded": summary.max_failures_exceeded}


# --- what was run against what ------------------------------------------------------


def _config_value(configuration: dict[str, Any], key: str) -> dict[str, str] | None:
    raw = configuration.get(key)
    if raw is None:
        return None
    if isinstance(raw, dict):
        if raw.get("type") == "env":
            default = raw.get("default")
            shown = "" if default is None else str(mask(str(default)))
            return {"value": shown, "env": str(raw.get("key") or ""), "source": "default"}
        return {"value": "(not a plain value)", "env": "", "source": ""}
    return {"value": str(mask(str(raw))), "env": "", "source": "experiment"}


def _installed(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _version(recorded: Any, dist: str) -> dict[str, str]:
    if isinstance(recorded, str) and recorded:
        return {"version": recorded, "source": "journal"}
    here = _installed(dist)
    if here:
        return {"version": here, "source": "installed where the report was made"}
    return {"version": "unknown", "source": ""}


def _versions(journal: dict[str, Any]) -> dict[str, dict[str, str]]:
    recorded = as_dict(chaosraysvc_extension(journal).get("versions"))
    versions = {
        "ray": _version(recorded.get("ray"), "ray"),
        "chaosraysvc": _version(recorded.get("chaosraysvc"), "chaosraysvc"),
        "chaoslib": _version(journal.get("chaoslib-version"), "chaostoolkit-lib"),
        "chaostoolkit": _version(recorded.get("chaostoolkit"), "chaostoolkit"),
    }
    if versions["chaosraysvc"]["version"] == "unknown":
        versions["chaosraysvc"] = {"version": __version__, "source": "the report tool"}
    return versions


def _about(
    run: RunInput, summary: TrafficSummary | None, faults: list[dict[str, Any]]
) -> dict[str, Any]:
    journal = run.journal
    experiment = as_dict(journal.get("experiment"))
    configuration = as_dict(experiment.get("configuration"))
    target = {key: v for key in TARGET_KEYS if (v := _config_value(configuration, key))}
    used = next((f["target"] for f in faults if f.get("target")), "")
    if used:
        target["raysvc_target"] = {"value": used, "env": "", "source": "the delete action"}
    recorded = as_dict(chaosraysvc_extension(journal).get("target"))
    for key, field in (
        ("raysvc_target", "target"),
        ("rayservice_name", "rayservice"),
        ("rayservice_namespace", "namespace"),
    ):
        if isinstance(recorded.get(field), str) and recorded[field]:
            value = str(mask(recorded[field]))
            target[key] = {"value": value, "env": "", "source": "the run's configuration"}
    traffic_run = summary.run if summary is not None else {}
    start, end = epoch(journal.get("start")), epoch(journal.get("end"))
    duration = number(journal.get("duration"))
    if run.interrupted:  # no journal: the traffic's own span is all there is
        start, end = number(traffic_run.get("started")), number(traffic_run.get("ended"))
        duration = number(traffic_run.get("duration_s"))
    if duration is None and start is not None and end is not None:
        duration = round(end - start, 3)
    untitled = "(unknown experiment: no journal)" if run.interrupted else "(untitled experiment)"
    return {
        "title": str(experiment.get("title") or untitled),
        "description": str(experiment.get("description") or ""),
        "tags": [str(t) for t in as_list(experiment.get("tags"))],
        "target": target,
        "traffic": {
            k: mask(traffic_run[k])
            for k in ("mode", "rate", "concurrency", "timeout_s", "url", "path", "endpoints")
            if traffic_run.get(k) not in (None, "", [])
        }
        | _request_shape(traffic_run),
        "versions": _versions(journal),
        "platform": str(journal.get("platform") or ""),
        "node": str(journal.get("node") or ""),
        "started": utc(start),
        "ended": utc(end),
        "duration_s": duration,
    }


def _request_shape(traffic_run: dict[str, Any]) -> dict[str, Any]:
    """Return the method and the accepted statuses ("any 2xx" when none are listed)."""
    if not traffic_run:
        return {}
    statuses = [str(c) for c in as_list(traffic_run.get("expected_status"))]
    return {
        "method": str(traffic_run.get("method") or "POST"),
        "accepted": ", ".join(statuses) if statuses else "any 2xx",
    }


# --- steady state and activities ----------------------------------------------------


def _probe_cell(result: dict[str, Any]) -> dict[str, Any]:
    status = str(result.get("status") or "")
    met = result.get("tolerance_met")
    return {
        "value": output_text(result, 80) if status != "failed" else "",
        "met": met if isinstance(met, bool) else None,
        "status": status,
        "error": short_error(result.get("exception")),
    }


_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
_SCALARS = (bool, int, float, str)


def _known_value(
    key: str, configuration: dict[str, Any], recorded: dict[str, Any], results: list[Any]
) -> tuple[Any, str]:
    """Return the value a `${key}` placeholder had in the run and where it comes from.

    The value is None (and the source says why) when the run did not record it and it
    cannot be inferred.
    """
    if key in recorded:
        return mask({key: recorded[key]})[key], "recorded by the run"
    raw = configuration.get(key)
    if key not in configuration:
        return None, f"unknown: `{key}` is not in the experiment's configuration"
    if not isinstance(raw, dict):
        return mask({key: raw})[key], "from the experiment's configuration"
    env, default = str(raw.get("key") or ""), raw.get("default")
    where = f"${env}" if env else "its provider"
    shown_default = "" if default is None else f"; its default is {short_value(default, 30)}"
    for result in results:  # a scalar tolerance is met by an equal value only
        output = result.get("output")
        if result.get("tolerance_met") is True and isinstance(output, _SCALARS):
            return (
                output,
                f"{where} at run time, inferred from the probe that met it{shown_default}",
            )
    return None, f"unknown: {where} at run time was not recorded{shown_default}"


def _tolerance(
    raw: Any, configuration: dict[str, Any], recorded: dict[str, Any], results: list[Any]
) -> dict[str, Any]:
    """Return a tolerance for display: its value with placeholders resolved, and notes."""
    notes: list[str] = []
    unknown = False

    def resolve(value: Any) -> Any:
        nonlocal unknown
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if not isinstance(value, str) or "${" not in value:
            return value
        whole = _PLACEHOLDER.fullmatch(value)
        keys = [whole.group(1)] if whole else _PLACEHOLDER.findall(value)
        found: dict[str, Any] = {}
        for key in keys:
            known, source = _known_value(key, configuration, recorded, results)
            notes.append(f"${{{key}}}: {source}")
            if known is None:
                unknown = True
            else:
                found[key] = known
        if whole:
            return found.get(whole.group(1), value)
        return _PLACEHOLDER.sub(lambda m: str(found.get(m.group(1), m.group(0))), value)

    resolved = resolve(raw)
    return {
        "value": short_value(resolved, 60),
        "written": short_value(raw, 60) if notes else "",
        "known": not unknown,
        "notes": notes,
    }


def _steady_state(journal: dict[str, Any]) -> dict[str, Any]:
    experiment = as_dict(journal.get("experiment"))
    hypothesis = as_dict(experiment.get("steady-state-hypothesis"))
    configuration = as_dict(experiment.get("configuration"))
    recorded = as_dict(chaosraysvc_extension(journal).get("configuration"))
    states = as_dict(journal.get("steady_states"))
    raw_tolerances: dict[str, Any] = {}
    for probe in as_list(hypothesis.get("probes")):
        probe = as_dict(probe)
        raw_tolerances[str(probe.get("name") or "(unnamed)")] = probe.get("tolerance")
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    results: dict[str, list[dict[str, Any]]] = {}
    met: dict[str, bool | None] = {}
    for when in ("before", "after"):
        state = as_dict(states.get(when))
        value = state.get("steady_state_met")
        met[when] = value if isinstance(value, bool) else None
        for result in as_list(state.get("probes")):
            if not isinstance(result, dict):
                continue
            name = activity_name(result)
            if name not in raw_tolerances:
                raw_tolerances[name] = as_dict(result.get("activity")).get("tolerance")
            cells.setdefault(name, {})[when] = _probe_cell(result)
            results.setdefault(name, []).append(result)
    tolerances = {
        name: _tolerance(raw, configuration, recorded, results.get(name, []))
        for name, raw in raw_tolerances.items()
    }
    during = [r for r in as_list(states.get("during")) if isinstance(r, dict)]
    return {
        "title": str(hypothesis.get("title") or ""),
        "before_met": met["before"],
        "after_met": met["after"],
        "probes": [
            {
                "name": name,
                "tolerance": tolerance["value"],
                "tolerance_written": tolerance["written"],
                "tolerance_known": tolerance["known"],
                "tolerance_notes": tolerance["notes"],
                "before": cells.get(name, {}).get("before"),
                "after": cells.get(name, {}).get("after"),
            }
            for name, tolerance in tolerances.items()
        ],
        "during": {
            "checks": len(during),
            "not_met": sum(1 for r in during if r.get("steady_state_met") is False),
        }
        if during
        else None,
    }


def _snapshot(output: dict[str, Any], traffic: dict[str, Any] | None, origin: float | None) -> str:
    """Say that a traffic summary taken mid-run counts fewer requests than the report.

    `traffic_summary` reads the log while the traffic still runs; the report's totals
    count it to the stop. Returns "" when the summary is the whole run.
    """
    run = as_dict(output.get("run"))
    n, total = number(output.get("requests")), number(as_dict(traffic).get("requests"))
    if run.get("complete") is not False and (total is None or n == total):
        return ""
    ended = number(run.get("ended"))
    stopped = number(as_dict(as_dict(traffic).get("run")).get("ended"))
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
    journal: dict[str, Any], origin: float | None, traffic: dict[str, Any] | None
) -> list[dict[str, Any]]:
    rows = []
    for phase, result in activity_results(journal):
        start = epoch(result.get("start"))
        output = result.get("output")
        note = ""
        if isinstance(output, dict) and "requests" in output and "failures" in output:
            note = _snapshot(output, traffic, origin)
        rows.append(
            {
                "phase": phase,
                "name": activity_name(result),
                "type": str(as_dict(result.get("activity")).get("type") or ""),
                "status": str(result.get("status") or "unknown"),
                "start": utc(start),
                "offset_s": round(start - origin, 3) if start and origin else None,
                "duration_s": number(result.get("duration")),
                "result": output_text(result),
                "note": note,
                "error": short_error(result.get("exception")),
            }
        )
    return rows


# --- the doctor's risks -------------------------------------------------------------

_WHEN = {
    "before": "by the steady-state probe before the fault",
    "after": "by the steady-state probe after the fault",
    "method": "by a probe of the method",
    "rollback": "by a rollback probe",
}


def _risk(raw: Any) -> dict[str, Any]:
    risk = as_dict(mask(raw))
    return {
        "id": str(risk.get("id") or "?"),
        "severity": str(risk.get("severity") or "?"),
        "title": str(risk.get("title") or ""),
        "evidence": [short_value(e, 200) for e in as_list(risk.get("evidence"))][:4],
    }


def _risks(journal: dict[str, Any]) -> dict[str, Any]:
    """Return the doctor's risks as the run recorded them (see the module docstring)."""
    checks: list[dict[str, Any]] = []
    states = as_dict(journal.get("steady_states"))
    found = [
        (when, r)
        for when in ("before", "after")
        for r in as_list(as_dict(states.get(when)).get("probes"))
        if isinstance(r, dict)
    ]
    found += activity_results(journal)
    for when, result in found:
        if activity_func(result) != "ha_risks" or not isinstance(result.get("output"), list):
            continue
        arguments = as_dict(
            as_dict(as_dict(result.get("activity")).get("provider")).get("arguments")
        )
        checks.append(
            {
                "source": f"`ha_risks` {_WHEN[when]} ({activity_name(result)})",
                "at": utc(epoch(result.get("start"))),
                "min_severity": str(arguments.get("min_severity") or "low"),
                "risks": [_risk(r) for r in result["output"]],
                "error": "",
            }
        )
    doctor = as_dict(chaosraysvc_extension(journal).get("doctor"))
    if doctor:
        checks.append(
            {
                "source": str(doctor.get("source") or "recorded by the traffic control"),
                "at": utc(number(doctor.get("at"))),
                "min_severity": str(doctor.get("min_severity") or "low"),
                "risks": [_risk(r) for r in as_list(doctor.get("risks"))],
                "error": short_error(doctor.get("error")),
            }
        )
    ids = sorted({r["id"] for c in checks for r in c["risks"]})
    return {"recorded": bool(checks), "checks": checks, "ids": ids}


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


def _cut_off(faults: list[dict[str, Any]], log_end: float | None) -> None:
    """Mark the recovery of faults in a run without journal as cut off by the log's end."""
    for fault in faults:
        fault["cut_off"] = bool(fault["confirmed"] and not fault["dry_run"] and fault["missing"])
        if fault["cut_off"]:
            fault["recovered"], fault["awaited"] = None, True
            at = fault["at"]
            fault["log_end_after_s"] = round(log_end - at, 3) if log_end and at else None


# --- everything ---------------------------------------------------------------------


def _phase_rows(summary: TrafficSummary | None) -> list[dict[str, Any]]:
    if summary is None:
        return []
    rows: list[dict[str, Any]] = [
        {"name": name, **mask(phase.to_json())}
        for name, phase in summary.phases.items()
        if phase is not None
    ]
    return rows


def run_figures(run: RunInput, index: int = 0) -> dict[str, Any]:
    """Return every figure of one run as plain data (see the module docstring)."""
    journal = run.journal
    summary = TrafficSummary.from_json(run.summary) if run.summary is not None else None
    traffic = _traffic(summary)
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
    for fault in faults:
        fault.setdefault("cut_off", False)
    log_end = number(summary.run.get("ended")) if summary is not None else None
    if run.interrupted:
        _cut_off(faults, log_end)
    steady = _steady_state(journal)
    deleted = next(
        (f for f in faults if f["confirmed"] and not f["dry_run"] and f["offset_s"] is not None),
        None,
    )
    figures: dict[str, Any] = {
        "id": f"run-{index + 1}",
        "journal": str(run.journal_path) if run.journal_path else None,
        "traffic_log": str(run.traffic_path) if run.traffic_path else None,
        "figures_from": run.summary_source or None,
        "warnings": [mask(w) for w in run.warnings],
        "interrupted": mask(run.interrupted),
        "missing_journal": str(run.missing_journal) if run.missing_journal else None,
        "unknown": _unknowns() if run.interrupted else [],
        "origin": origin,
        "origin_label": origin_label,
        "deletion_offset_s": deleted["offset_s"] if deleted else None,
        "deletion_label": f"the {deleted['role'] or '?'} pod deletion" if deleted else "",
        "verdict": judge(
            journal,
            steady,
            traffic,
            faults,
            interrupted=run.interrupted,
            log_end_s=round(log_end - origin, 3) if log_end and origin else None,
            evidence=[mask(e) for e in run.evidence],
        ).to_json(),
        "about": _about(run, summary, faults),
        "risks": _risks(journal),
        "faults": faults,
        "traffic": traffic,
        "phases": _phase_rows(summary),
        "steady_state": steady,
        "activities": _activities(journal, origin, traffic),
    }
    figures["trend"] = trend_row(figures)
    return figures


def trend_row(figures: dict[str, Any]) -> dict[str, Any]:
    """Return one trend-table row: date, experiment, verdict, requests, failures, times.

    `failure_time_s` is None when the run's summary predates the failure time (and
    without traffic), 0.0 when no request failed.
    """
    traffic = figures.get("traffic") or {}
    window = traffic.get("longest_failure_window") or {}
    failing = traffic.get("failure_time")
    if isinstance(failing, dict):
        failure_time_s = number(failing.get("seconds"))
    else:
        failure_time_s = 0.0 if traffic and traffic.get("failures") == 0 else None
    first = next((f for f in figures["faults"] if f["confirmed"] and not f["dry_run"]), None)
    return {
        "id": figures["id"],
        "date": figures["about"]["started"],
        "experiment": figures["about"]["title"],
        "outcome": figures["verdict"]["outcome"],
        "verdict": figures["verdict"]["label"],
        "requests": traffic.get("requests"),
        "failures": traffic.get("failures"),
        "failure_window_s": (window.get("duration_s") or 0.0) if traffic else None,
        "failure_time_s": failure_time_s,
        "recovery_s": first["recovery_s"] if first else None,
        "recovered": first["recovered"] if first else None,
        "journal": figures["journal"],
    }
