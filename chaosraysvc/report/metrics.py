"""A run's figures as Prometheus metrics: a Pushgateway push or a node-exporter textfile.

The values are those of the report (`chaosraysvc.report.figures.run_figures`), taken
from the journal and its traffic log; nothing is recomputed here. One run gives::

    chaosraysvc_run_outcome{experiment,rayservice,namespace,target,outcome="deviated"} 1
    chaosraysvc_run_outcome{...,outcome="passed"} 0     (one sample per outcome)
    chaosraysvc_run_deviated{experiment,rayservice,namespace,target} 1
    chaosraysvc_run_requests{...} 800
    chaosraysvc_run_failed_requests{...} 50
    chaosraysvc_run_longest_failure_window_seconds{...} 2.5
    chaosraysvc_run_recovery_seconds{...,milestone="pod_ready"} 5.0
    chaosraysvc_run_latency_p99_seconds{...,phase="outage"} 0.043
    chaosraysvc_run_brownout_seconds{...} 3.0
    chaosraysvc_run_end_timestamp_seconds{...} 1.800000041e+09

`outcome` is the report's verdict (`chaosraysvc.report.verdict.OUTCOMES`): 1 for the
run's, 0 for every other, so `chaosraysvc_run_outcome{outcome="passed"} == 0` finds every
run that did not pass, including an `inconclusive` one whose fault was never injected
(`deviated` is 0 for it). A milestone the service did not reach, or a phase without
requests, has no sample; a run without traffic has no traffic samples at all. The
recovery milestones are those of the run's first fault that happened (the report's trend
row uses the same one): a fault that was not injected has none.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc.report.figures import About, RunFigures, run_figures
from chaosraysvc.report.load import (
    RunInput,
    chaosraysvc_extension,
    check_evidence,
    summarize_log,
)
from chaosraysvc.report.values import as_dict, epoch, number
from chaosraysvc.report.verdict import OUTCOMES
from chaosraysvc.traffic.log import TrafficLogError, read_traffic_log

__all__ = [
    "LABELS",
    "MetricsPublishError",
    "RunMetrics",
    "journal_metrics",
    "push",
    "registry_of",
    "run_input_of",
    "run_metrics",
    "write_textfile",
]

logger = logging.getLogger("chaostoolkit")

LABELS = ("experiment", "rayservice", "namespace", "target")
PREFIX = "chaosraysvc_run_"


class MetricsPublishError(ChaosRaySvcError):
    """Metrics could not be pushed or written: names the URL or file and the error."""


@dataclass(frozen=True)
class RunMetrics:
    """The figures of one run that are published; None (or absent) means not measured."""

    labels: dict[str, str]
    outcome: str
    deviated: bool
    requests: int | None = None
    failed_requests: int | None = None
    longest_failure_window_s: float | None = None
    recovery_s: dict[str, float] = field(default_factory=dict)
    p99_s: dict[str, float] = field(default_factory=dict)
    brownout_s: float | None = None
    ended: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the figures as plain JSON data (what the journal and a webhook carry)."""
        return {
            "labels": dict(self.labels),
            "outcome": self.outcome,
            "deviated": self.deviated,
            "requests": self.requests,
            "failed_requests": self.failed_requests,
            "longest_failure_window_s": self.longest_failure_window_s,
            "recovery_s": dict(self.recovery_s),
            "p99_latency_s": dict(self.p99_s),
            "brownout_s": self.brownout_s,
            "ended": self.ended,
        }


def run_input_of(journal: dict[str, Any]) -> RunInput:
    """Return the run of an in-memory `journal` (the state a control receives) as a report input.

    The traffic log is the one the traffic control recorded in the journal's chaosraysvc
    extension (relative to the current directory when relative); when it cannot be
    read, the figures come from the summary recorded beside it, as `load_run` does.
    """
    run = RunInput(journal_path=None, journal=journal)
    traffic = as_dict(chaosraysvc_extension(journal).get("traffic"))
    log = traffic.get("log")
    if isinstance(log, str) and log:
        path = Path(log)
        try:
            parsed = read_traffic_log(path) if path.is_file() else None
        except TrafficLogError as exc:
            run.warnings.append(f"traffic log {path} cannot be read: {exc}")
            parsed = None
        if parsed is not None and parsed.header:
            run.traffic_path, run.traffic = path, parsed
            run.summary, run.summary_source = summarize_log(parsed), "traffic log"
            check_evidence(run)
    recorded = traffic.get("summary")
    if run.summary is None and isinstance(recorded, dict) and "requests" in recorded:
        run.summary, run.summary_source = recorded, "journal"
    return run


def _label(about: About, key: str) -> str:
    value = about.target.get(key)
    return value.value if value is not None else ""


def run_metrics(figures: RunFigures, ended: float | None = None) -> RunMetrics:
    """Return the published figures of a report's `figures` (`run_figures`).

    `ended` is when the run ended (Unix time), if known.
    """
    about, verdict, traffic, row = figures.about, figures.verdict, figures.traffic, figures.trend
    labels = {
        "experiment": about.title,
        "rayservice": _label(about, "rayservice_name"),
        "namespace": _label(about, "rayservice_namespace"),
        "target": _label(about, "raysvc_target"),
    }
    first = figures.first_fault
    recovery = {
        milestone: float(seconds)
        for milestone, seconds in (first.seconds_to if first else {}).items()
        if seconds is not None
    }
    p99 = {
        phase.name: phase.latency_ms.p99 / 1000.0
        for phase in figures.phases
        if phase.latency_ms.p99 is not None
    }
    brownout: float | None = None
    if traffic is not None:
        duration = traffic.brownout.duration_s if traffic.brownout is not None else None
        brownout = float(number(duration) or 0.0)
    return RunMetrics(
        labels=labels,
        outcome=verdict.outcome,
        deviated=verdict.deviated,
        requests=row.requests,
        failed_requests=row.failures,
        longest_failure_window_s=row.failure_window_s,
        recovery_s=recovery,
        p99_s=p99,
        brownout_s=brownout,
        ended=ended,
    )


def journal_metrics(journal: dict[str, Any]) -> tuple[RunMetrics, RunFigures]:
    """Return the metrics and the report figures of an in-memory journal."""
    figures = run_figures(run_input_of(journal))
    return run_metrics(figures, epoch(journal.get("end"))), figures


def registry_of(metrics: RunMetrics) -> CollectorRegistry:
    """Return a registry holding `metrics` as gauges (see the module docstring)."""
    registry = CollectorRegistry()
    values = [metrics.labels.get(k, "") for k in LABELS]
    gauges: dict[str, Gauge] = {}

    def gauge(name: str, doc: str, value: float | None, extra: tuple[str, str] = ("", "")) -> None:
        if value is None:
            return
        key, label = extra
        if name not in gauges:
            names = [*LABELS, key] if key else list(LABELS)
            gauges[name] = Gauge(PREFIX + name, doc, names, registry=registry)
        gauges[name].labels(*values, *([label] if key else [])).set(value)

    for outcome in OUTCOMES:
        gauge(
            "outcome",
            "1 for the run's verdict (passed, deviated, inconclusive, ...), 0 for the others",
            float(outcome == metrics.outcome),
            ("outcome", outcome),
        )
    gauge("deviated", "1 when the steady state did not hold after the fault", metrics.deviated)
    gauge("requests", "Requests the background traffic sent", metrics.requests)
    gauge("failed_requests", "Requests that failed", metrics.failed_requests)
    gauge(
        "longest_failure_window_seconds",
        "Longest run of consecutive failed requests, first to last failure",
        metrics.longest_failure_window_s,
    )
    for milestone, seconds in metrics.recovery_s.items():
        gauge(
            "recovery_seconds",
            "Seconds from the first pod deletion to each recovery milestone",
            seconds,
            ("milestone", milestone),
        )
    for phase, seconds in metrics.p99_s.items():
        gauge(
            "latency_p99_seconds",
            "99th percentile latency of the successful requests per traffic phase",
            seconds,
            ("phase", phase),
        )
    gauge(
        "brownout_seconds",
        "Longest run of whole seconds below the brownout share of the baseline success rate",
        metrics.brownout_s,
    )
    gauge("end_timestamp_seconds", "When the run ended (Unix time)", metrics.ended)
    return registry


def push(
    registry: CollectorRegistry,
    url: str,
    job: str,
    grouping_key: dict[str, str],
    timeout: float = 10.0,
) -> float:
    """Push `registry` to the Pushgateway at `url` (replacing the group); return seconds taken.

    Raises `MetricsPublishError` naming the URL and the error when the push fails.
    """
    started = time.monotonic()
    try:
        push_to_gateway(url, job=job, registry=registry, grouping_key=grouping_key, timeout=timeout)
    except Exception as exc:  # urllib's URLError, HTTPError, timeouts, bad URLs
        raise MetricsPublishError(
            f"pushing metrics to the Pushgateway at {url} (job {job!r}) failed: "
            f"{type(exc).__name__}: {exc}; check the URL (configuration "
            "'metrics_pushgateway_url' or $RAYSVC_METRICS_PUSHGATEWAY) and that it is reachable"
        ) from exc
    return time.monotonic() - started


def write_textfile(registry: CollectorRegistry, path: str | Path) -> None:
    """Write `registry` to `path` for node-exporter's textfile collector, atomically.

    Raises `MetricsPublishError` naming the file and the error.
    """
    try:
        write_to_textfile(str(path), registry)
    except OSError as exc:
        raise MetricsPublishError(
            f"writing metrics to the textfile {path} failed: {exc.strerror or exc}; check "
            "that its folder exists and is writable (configuration 'metrics_textfile' or "
            "$RAYSVC_METRICS_TEXTFILE)"
        ) from exc
