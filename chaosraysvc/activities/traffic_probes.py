"""Probes that read the statistics of the background traffic of this process.

The traffic is started by the `chaosraysvc.controls.traffic` control (or the
`start_traffic` action); these probes read it, for instance in the steady state::

    {
        "type": "probe",
        "name": "no-failed-request",
        "tolerance": 0,
        "provider": {
            "type": "python",
            "module": "chaosraysvc.activities.traffic_probes",
            "func": "traffic_failures"
        }
    }
"""

from __future__ import annotations

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosraysvc.activities.common import activity_errors
from chaosraysvc.traffic import registry
from chaosraysvc.traffic.engine import TrafficEngine
from chaosraysvc.traffic.log import read_traffic_log
from chaosraysvc.traffic.stats import PHASES, journal_summary, phase_bounds, phase_requests
from chaosraysvc.traffic.stats import percentile as nearest_rank

__all__ = ["traffic_failures", "traffic_latency_ms", "traffic_summary"]


def _engine() -> TrafficEngine:
    with activity_errors():
        return registry.require_engine()


def traffic_failures(
    configuration: Configuration | None = None, secrets: Secrets | None = None
) -> int:
    """Read how many requests of the current traffic run failed so far.

    Counts every failed request since the traffic started (or of the last run when it
    has stopped). Raises `ActivityFailed` when no traffic ran in this process.
    """
    return _engine().failures


def traffic_summary(
    brownout_ratio: float = 0.5,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Read the statistics of the current traffic run so far.

    Same as `stop_traffic`'s summary (without `timeline`), computed from the log as it
    is now; `brownout_ratio` sets the brownout threshold as a share of the baseline's
    successful requests per second. Raises `ActivityFailed` when no traffic ran.
    """
    engine = _engine()
    with activity_errors():
        return journal_summary(engine.summary(brownout_ratio=float(brownout_ratio)))


def traffic_latency_ms(
    percentile: float = 99,
    phase: str = "",
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> float:
    """Read a latency percentile, in milliseconds, of the successful requests so far.

    `percentile` is one of 50, 95, 99 or 100 (the maximum); any other value in (0, 100]
    is computed the same way (nearest rank). `phase` "" covers the whole run, else one
    of "baseline", "outage", "recovery", "after" (see `chaosraysvc.traffic.stats`).
    Raises `ActivityFailed` for an unknown phase, a phase the run has not reached, or
    when no request of it succeeded.
    """
    p = float(percentile)
    if not 0 < p <= 100:
        raise ActivityFailed(f"percentile must be in (0, 100], got {percentile!r}")
    if phase and phase not in PHASES:
        raise ActivityFailed(f"unknown phase {phase!r}: use one of {', '.join(PHASES)} or ''")
    engine = _engine()
    engine.flush()
    with activity_errors():
        log = read_traffic_log(engine.log_path)
    requests = log.requests
    if phase:
        bounds = phase_bounds(log)[phase]
        if bounds is None:
            raise ActivityFailed(
                f"the traffic run has no {phase!r} phase (yet): its marks are "
                f"{[m['event'] for m in log.marks]}"
            )
        requests = phase_requests(log, bounds)
    values = sorted(r["ms"] for r in requests if r["ok"])
    value = nearest_rank(values, p)
    if value is None:
        where = f"in phase {phase!r}" if phase else "so far"
        raise ActivityFailed(
            f"no successful request {where} ({len(requests)} sent): no latency to report"
        )
    return value
