"""Record Serve's own view of each phase of the run, from Prometheus, for the report.

Declare it in the experiment, or for every run in the Chaos Toolkit settings file::

    "controls": [
        {"name": "serve-metrics", "provider": {"type": "python",
                                               "module": "chaosraysvc.controls.serve_metrics"}}
    ]

When the run ends and `prometheus_base_url` ($RAYSVC_PROMETHEUS_URL) is set, it asks that
Prometheus what Serve's proxies counted in each phase of the run: `before` (the minute
before the first fault), `outage` (the fault to its last recovery milestone) and `after` (to the
run's end): requests, 5xx answers, their ratio and the p99 latency from Serve's histogram
(`model/serve_metrics.py:phase_queries`). `before` is the minute before the first fault;
each phase's window is shifted by `lag_s` (`serve_metrics_lag`, 25 s by default: Ray's
metrics export plus one 15 s scrape, docs/metrics.md), since a request is in Prometheus only
that long after it was answered, and the last phase ends at what Prometheus has by the run's
end. A phase shorter than two scrapes has no count (`requests` None), not a count of 0. The
result goes into the journal's chaosraysvc extension as `serve_metrics`, which `chaosraysvc report`
shows beside the traffic log's phases. Without a URL it does nothing; a failed query is
logged and recorded (`error`), never failing the run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from chaosraysvc.config import number, setting
from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc.model.serve_metrics import SeriesFilter, phase_queries
from chaosraysvc.report.faults import find_faults
from chaosraysvc.report.load import writable_extension
from chaosraysvc.report.values import epoch
from chaosraysvc.serve import prometheus

__all__ = ["after_experiment_control", "serve_view"]

logger = logging.getLogger("chaostoolkit")
BEFORE_S = 60.0  # "before": the minute before the fault (the run's start is often seconds)


def phases_of(journal: dict[str, Any]) -> list[tuple[str, float, float]]:
    """The run's phases as (name, start, end) epoch seconds; [] when it has no start or end."""
    start, end = epoch(journal.get("start")), epoch(journal.get("end")) or time.time()
    if start is None:
        return []
    faults = [f for f in find_faults(journal, [], start, logged=False) if f.at is not None]
    if not faults:
        return [("run", start, end)]
    fault_at = min(float(f.at) for f in faults if f.at is not None)
    marks = [t for f in faults for t in f.milestones_at.values()]
    recovered = max(marks) if marks else None
    phases = [("before", fault_at - BEFORE_S, fault_at)]
    if recovered is None or recovered <= fault_at:
        return [*phases, ("outage", fault_at, end)]
    return [*phases, ("outage", fault_at, recovered), ("after", recovered, end)]


def serve_view(journal: dict[str, Any], base_url: str, lag_s: float) -> dict[str, Any]:
    """Ask Prometheus at `base_url` for each phase of `journal` (see the module's text)."""
    which = SeriesFilter()
    rows = []
    now = time.time()
    for name, start, end in phases_of(journal):
        start, end = start + lag_s, min(end + lag_s, now)  # the last phase: as far as seen
        if end - start < 1:
            continue
        values = {
            k: prometheus.ask(base_url, q) for k, q in phase_queries(which, start, end).items()
        }
        requests, p99 = values["requests"], values["p99_ms"]
        errors = values["errors"] or 0.0
        rows.append({
            "phase": name, "start": round(start - lag_s, 3), "end": round(end - lag_s, 3),
            # None: no scrape pair in the phase (shorter than two scrapes), not "no request"
            "requests": round(requests) if requests is not None else None,
            "errors": round(errors) if requests is not None else None,
            "error_ratio": round(errors / requests, 6) if requests else None,
            "p99_ms": round(p99, 1) if p99 is not None and p99 == p99 else None,
        })  # fmt: skip
    return {"url": base_url, "lag_s": lag_s, "phases": rows}


def after_experiment_control(
    context: Any,
    state: Any = None,
    configuration: Mapping[str, Any] | None = None,
    secrets: Any = None,
    **kwargs: Any,
) -> None:
    base = setting(configuration, "prometheus_base_url").rstrip("/")
    if not base or not isinstance(state, dict):
        return
    try:
        lag = number(setting(configuration, "serve_metrics_lag"), "serve_metrics_lag")
        view = serve_view(state, base, lag)
    except ChaosRaySvcError as exc:
        logger.error("Serve's view of the run could not be read: %s", exc)
        view = {"url": base, "error": str(exc), "phases": []}
    writable_extension(state)["serve_metrics"] = view
    for row in view["phases"]:
        logger.info("Serve's view, %s: %s requests, %s 5xx, p99 %s ms", row["phase"],
                    row["requests"], row["errors"], row["p99_ms"])  # fmt: skip
