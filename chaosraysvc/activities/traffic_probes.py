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

Zero failures proves nothing when no request was sent: like KubeRay's HA test, which
asserts a non-zero request count too, put `traffic_sent_at_least` before it (it waits
for the first requests when the hypothesis is checked just after the traffic started)::

    {
        "type": "probe",
        "name": "traffic-sent-requests",
        "tolerance": true,
        "provider": {
            "type": "python",
            "module": "chaosraysvc.activities.traffic_probes",
            "func": "traffic_sent_at_least",
            "arguments": {"min_requests": 1, "timeout": 10}
        }
    }
"""

from __future__ import annotations

import math
import time
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosraysvc.activities.common import activity_errors
from chaosraysvc.config import number
from chaosraysvc.traffic import registry
from chaosraysvc.traffic.engine import TrafficEngine
from chaosraysvc.traffic.log import read_traffic_log
from chaosraysvc.traffic.stats import PHASES, journal_summary, phase_bounds, phase_requests
from chaosraysvc.traffic.stats import percentile as nearest_rank

__all__ = ["traffic_failures", "traffic_latency_ms", "traffic_sent_at_least", "traffic_summary"]

POLL_S = 0.05


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


def traffic_sent_at_least(
    min_requests: int = 1,
    timeout: float = 10.0,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> bool:
    """Tell whether the traffic has sent at least `min_requests` requests.

    Counts the requests completed since the traffic started, failed ones included
    (the `requests` of `traffic_summary`). While the traffic runs and the count is
    lower, waits up to `timeout` seconds for it: a steady-state hypothesis is first
    checked right after the traffic control started the traffic, so give a `timeout`
    above the traffic's per-request `timeout`, and a `min_requests` the baseline reaches
    within it (the same value is checked after the method). Returns False when the
    count is still lower (at once once the traffic has stopped). Raises `ActivityFailed`
    for `min_requests` < 1, a negative `timeout`, or when no traffic ran in this process.
    """
    try:
        count, wait = float(min_requests), float(timeout)
    except (TypeError, ValueError):
        raise ActivityFailed(
            f"min_requests and timeout must be numbers, got {min_requests!r} and {timeout!r}"
        ) from None
    if not (math.isfinite(count) and count >= 1 and count == int(count)):
        raise ActivityFailed(f"min_requests must be an integer >= 1, got {min_requests!r}")
    wanted = int(count)
    if not (math.isfinite(wait) and wait >= 0):
        raise ActivityFailed(f"timeout must be >= 0 seconds, got {timeout!r}")
    engine = _engine()
    deadline = time.monotonic() + wait
    while engine.requests < wanted and engine.running and time.monotonic() < deadline:
        time.sleep(POLL_S)
    return engine.requests >= wanted


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
    with activity_errors():
        ratio = number(brownout_ratio, "traffic_summary `brownout_ratio`")
    engine = _engine()
    with activity_errors():
        return journal_summary(engine.summary(brownout_ratio=ratio))


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
    with activity_errors():
        p = number(percentile, "traffic_latency_ms `percentile`")
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
