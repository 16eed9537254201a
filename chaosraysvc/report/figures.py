"""Compute what a report shows, as plain JSON-serializable data.

`run_figures(run)` turns a `RunInput` into one dict::

    {"id": "run-1", "journal": "...", "traffic_log": "..." | null,
     "figures_from": "traffic log" | "journal" | null, "warnings": [...],
     "origin": <epoch that offsets count from>, "origin_label": "traffic start",
     "verdict": {...}, "about": {...}, "faults": [...], "traffic": {...} | null,
     "phases": [...], "steady_state": {...}, "activities": [...], "trend": {...}}

`verdict` is `chaosraysvc.report.verdict.verdict`, `faults` those of
`chaosraysvc.report.faults`, `traffic` the statistics of `chaosraysvc.traffic.stats`
(without the per-second timeline, which only the chart uses), `trend` the run's row of
a trend table (`trend_row`). Templates only format these values; `--format json`
prints them.

No configuration value is shown except the chaosraysvc target keys, and never the
experiment's `secrets`; outputs and error messages are shortened and masked.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from chaosraysvc import __version__
from chaosraysvc.report.faults import find_faults
from chaosraysvc.report.load import RunInput, chaosraysvc_extension
from chaosraysvc.report.values import (
    activity_name,
    activity_results,
    as_dict,
    as_list,
    epoch,
    mask,
    number,
    short_error,
    short_value,
    utc,
)
from chaosraysvc.report.verdict import verdict

__all__ = ["TARGET_KEYS", "run_figures", "trend_row"]

# The configuration keys of `chaosraysvc.config`: where the experiment acts.
TARGET_KEYS = (
    "raysvc_target",
    "rayservice_name",
    "rayservice_namespace",
    "sandbox_state_dir",
    "serve_url",
    "dashboard_url",
    "redis_label_selector",
)
# What a report takes from a traffic summary (the journal's copy holds more: settings),
# with the value used when a summary lacks it (an older or hand-made journal).
TRAFFIC_KEYS: dict[str, Any] = {
    "run": {},
    "requests": None,
    "successes": None,
    "failures": None,
    "success_rate": None,
    "throughput_rps": None,
    "success_rps": None,
    "latency_ms": {},
    "latency_method": "",
    "failures_by_error": {},
    "failures_by_endpoint": {},
    "by_endpoint": {},
    "longest_failure_window": None,
    "failure_windows": None,
    "failures_after_fault": None,
    "fault_to_last_failure_s": None,
    "phases": {},
    "brownout_ratio": None,
    "brownout": None,
    "marks": [],
    "rate_check": None,
    "max_failures_exceeded": None,
    "likely_causes": [],
}
LATENCY_KEYS = ("p50", "p95", "p99", "max", "mean")
GROUP_KEYS = ("requests", "failures", "success_rate", "throughput_rps", "offset_s", "duration_s")


def _group(stats: dict[str, Any]) -> dict[str, Any]:
    """Return traffic statistics with every key a template reads (None when absent)."""
    latency = as_dict(stats.get("latency_ms"))
    return {**stats, "latency_ms": {k: number(latency.get(k)) for k in LATENCY_KEYS}}


def _traffic(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    traffic: dict[str, Any] = {}
    for key, default in TRAFFIC_KEYS.items():
        value = summary.get(key)
        same_type = default is None or isinstance(value, type(default))
        traffic[key] = mask(value) if value is not None and same_type else default
    return _group(traffic)


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


def _about(run: RunInput, faults: list[dict[str, Any]]) -> dict[str, Any]:
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
    traffic_run = as_dict(as_dict(run.summary).get("run"))
    start, end = epoch(journal.get("start")), epoch(journal.get("end"))
    duration = number(journal.get("duration"))
    if duration is None and start is not None and end is not None:
        duration = round(end - start, 3)
    return {
        "title": str(experiment.get("title") or "(untitled experiment)"),
        "description": str(experiment.get("description") or ""),
        "tags": [str(t) for t in as_list(experiment.get("tags"))],
        "target": target,
        "traffic": {
            k: mask(traffic_run[k])
            for k in ("mode", "rate", "concurrency", "timeout_s", "url", "path", "endpoints")
            if traffic_run.get(k) not in (None, "", [])
        },
        "versions": _versions(journal),
        "platform": str(journal.get("platform") or ""),
        "node": str(journal.get("node") or ""),
        "started": utc(start),
        "ended": utc(end),
        "duration_s": duration,
    }


# --- steady state and activities ----------------------------------------------------


def _probe_cell(result: dict[str, Any]) -> dict[str, Any]:
    status = str(result.get("status") or "")
    met = result.get("tolerance_met")
    return {
        "value": short_value(result.get("output"), 80) if status != "failed" else "",
        "met": met if isinstance(met, bool) else None,
        "status": status,
        "error": short_error(result.get("exception")),
    }


def _steady_state(journal: dict[str, Any]) -> dict[str, Any]:
    hypothesis = as_dict(as_dict(journal.get("experiment")).get("steady-state-hypothesis"))
    states = as_dict(journal.get("steady_states"))
    tolerances: dict[str, str] = {}
    for probe in as_list(hypothesis.get("probes")):
        probe = as_dict(probe)
        tolerances[str(probe.get("name") or "(unnamed)")] = short_value(probe.get("tolerance"), 60)
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    met: dict[str, bool | None] = {}
    for when in ("before", "after"):
        state = as_dict(states.get(when))
        value = state.get("steady_state_met")
        met[when] = value if isinstance(value, bool) else None
        for result in as_list(state.get("probes")):
            if not isinstance(result, dict):
                continue
            name = activity_name(result)
            if name not in tolerances:
                tolerance = as_dict(result.get("activity")).get("tolerance")
                tolerances[name] = short_value(tolerance, 60)
            cells.setdefault(name, {})[when] = _probe_cell(result)
    during = [r for r in as_list(states.get("during")) if isinstance(r, dict)]
    return {
        "title": str(hypothesis.get("title") or ""),
        "before_met": met["before"],
        "after_met": met["after"],
        "probes": [
            {
                "name": name,
                "tolerance": tolerance,
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


def _activities(journal: dict[str, Any], origin: float | None) -> list[dict[str, Any]]:
    rows = []
    for phase, result in activity_results(journal):
        start = epoch(result.get("start"))
        rows.append(
            {
                "phase": phase,
                "name": activity_name(result),
                "type": str(as_dict(result.get("activity")).get("type") or ""),
                "status": str(result.get("status") or "unknown"),
                "start": utc(start),
                "offset_s": round(start - origin, 3) if start and origin else None,
                "duration_s": number(result.get("duration")),
                "result": short_value(result.get("output")),
                "error": short_error(result.get("exception")),
            }
        )
    return rows


# --- everything ---------------------------------------------------------------------


def _phase_rows(traffic: dict[str, Any] | None) -> list[dict[str, Any]]:
    phases = as_dict(as_dict(traffic).get("phases"))
    return [
        {"name": name, **dict.fromkeys(GROUP_KEYS), **_group(phase)}
        for name, phase in phases.items()
        if isinstance(phase, dict)
    ]


def run_figures(run: RunInput, index: int = 0) -> dict[str, Any]:
    """Return every figure of one run as plain data (see the module docstring)."""
    journal, summary = run.journal, run.summary
    traffic = _traffic(summary)
    origin = number(as_dict(as_dict(summary).get("run")).get("started"))
    origin_label = "traffic start"
    if origin is None:
        origin, origin_label = epoch(journal.get("start")), "run start"
    faults = find_faults(journal, as_list(as_dict(traffic).get("marks")), origin)
    steady = _steady_state(journal)
    figures: dict[str, Any] = {
        "id": f"run-{index + 1}",
        "journal": str(run.journal_path),
        "traffic_log": str(run.traffic_path) if run.traffic_path else None,
        "figures_from": run.summary_source or None,
        "warnings": [mask(w) for w in run.warnings],
        "origin": origin,
        "origin_label": origin_label,
        "verdict": verdict(journal, steady, traffic, faults),
        "about": _about(run, faults),
        "faults": faults,
        "traffic": traffic,
        "phases": _phase_rows(traffic),
        "steady_state": steady,
        "activities": _activities(journal, origin),
    }
    figures["trend"] = trend_row(figures)
    return figures


def trend_row(figures: dict[str, Any]) -> dict[str, Any]:
    """Return one trend-table row: date, experiment, verdict, requests, failures, times."""
    traffic = figures.get("traffic") or {}
    window = traffic.get("longest_failure_window") or {}
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
        "recovery_s": first["recovery_s"] if first else None,
        "recovered": first["recovered"] if first else None,
        "journal": figures["journal"],
    }
