"""Start and stop background traffic against the serve Service, and read its statistics.

Most experiments declare the `chaosraysvc.controls.traffic` control instead, which
runs the traffic around the whole experiment. These activities run it for part of a
method, or read it from steady-state probes::

    {
        "type": "action",
        "name": "start-traffic",
        "provider": {
            "type": "python",
            "module": "chaosraysvc.activities.traffic",
            "func": "start_traffic",
            "arguments": {"mode": "rate", "rate": 100, "concurrency": 4}
        }
    },
    {
        "type": "probe",
        "name": "no-failed-request",
        "tolerance": 0,
        "provider": {
            "type": "python",
            "module": "chaosraysvc.activities.traffic",
            "func": "traffic_failures"
        }
    }

Fault actions add markers with `mark("fault", pod=..., role=...)` (importable from
here or `chaosraysvc.traffic`); it does nothing when no traffic runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaosraysvc.activities.common import Configuration, Secrets, activity_errors
from chaosraysvc.traffic import registry
from chaosraysvc.traffic.engine import TrafficEngine
from chaosraysvc.traffic.log import read_traffic_log
from chaosraysvc.traffic.registry import current_engine as current_engine
from chaosraysvc.traffic.registry import mark as mark
from chaosraysvc.traffic.settings import DEFAULT_BODY, build_settings
from chaosraysvc.traffic.stats import PHASES, phase_bounds, phase_requests
from chaosraysvc.traffic.stats import percentile as nearest_rank

ACTIONS = ("start_traffic", "stop_traffic")
PROBES = ("traffic_failures", "traffic_summary", "traffic_latency_ms")

__all__ = [
    "start_traffic",
    "stop_traffic",
    "traffic_failures",
    "traffic_latency_ms",
    "traffic_summary",
]

JOURNAL_OMITS = ("timeline",)


def journal_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """Return `summary` without its bulky per-second `timeline` (kept in the log)."""
    return {k: v for k, v in summary.items() if k not in JOURNAL_OMITS}


def _engine_or_fail() -> TrafficEngine:
    engine = registry.last_engine()
    if engine is None:
        raise ActivityFailed(
            "no traffic has run in this process: start it with the start_traffic action "
            "or the chaosraysvc.controls.traffic control"
        )
    return engine


def start_traffic(
    url: str = "",
    path: str = "/fruit/",
    body: Any = DEFAULT_BODY,
    expected: Any = "12",
    mode: str = "sequential",
    rate: float = 0.0,
    concurrency: int = 1,
    timeout: float = 2.0,
    log_path: str = "",
    max_failures: int = -1,
    endpoints: Sequence[Any] | str = (),
    endpoint_mode: str = "round_robin",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Start sending requests to the serve Service in the background.

    Sends `POST <url><path>` with `body` (a string is sent as is, anything else as
    JSON) and expects `expected` (compared on the stripped text or the parsed JSON; ""
    accepts any 2xx). `url` "" asks the target for its serve URL. `mode` "sequential"
    keeps one request in flight; "rate" starts `rate` requests per second on a fixed
    timeline with at most `concurrency` in flight. `timeout` is per request, in
    seconds. `endpoints` (a list of base URLs, "label=url" strings, or
    "serve_endpoints" for the target's ready endpoints) replaces `url` and labels every
    request; `endpoint_mode` "round_robin" or "per_endpoint" spreads them. `log_path`
    (default: `<journal stem>-traffic.jsonl` beside the journal) receives one JSON line
    per request. `max_failures` >= 0 aborts the experiment when failures exceed it,
    if the control `chaosraysvc.controls.traffic` is declared.

    Returns `{"log": ..., "started": bool, "settings": {...}}`; `started` is False when
    traffic with the same settings already ran. Raises `ActivityFailed` for invalid
    settings, an unwritable log, or traffic already running with other settings.
    """
    with activity_errors():
        settings = build_settings(
            url=url,
            path=path,
            body=body,
            expected=expected,
            mode=mode,
            rate=rate,
            concurrency=concurrency,
            timeout=timeout,
            log_path=log_path,
            max_failures=max_failures,
            endpoints=endpoints,
            endpoint_mode=endpoint_mode,
            configuration=configuration,
            secrets=secrets,
        )
        engine, started = registry.start_engine(settings)
    return {"log": str(engine.log_path), "started": started, "settings": engine.settings.describe()}


def stop_traffic(configuration: Configuration = None, secrets: Secrets = None) -> dict[str, Any]:
    """Stop the background traffic and return its summary.

    The summary is `chaosraysvc.traffic.stats.summarize` of the traffic log, without
    the per-second `timeline`, plus `log` and `settings`. Stopping traffic that has
    already stopped returns the same summary again. Raises `ActivityFailed` when no
    traffic ran in this process.
    """
    _engine_or_fail()
    summary = registry.stop_engine()
    assert summary is not None
    return journal_summary(summary)


def traffic_failures(configuration: Configuration = None, secrets: Secrets = None) -> int:
    """Read how many requests of the current traffic run failed so far.

    Counts every failed request since the traffic started (or of the last run when it
    has stopped). Raises `ActivityFailed` when no traffic ran in this process.
    """
    return _engine_or_fail().failures


def traffic_summary(
    brownout_ratio: float = 0.5,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Read the statistics of the current traffic run so far.

    Same as `stop_traffic`'s summary (without `timeline`), computed from the log as it
    is now; `brownout_ratio` sets the brownout threshold as a share of the baseline's
    successful requests per second. Raises `ActivityFailed` when no traffic ran.
    """
    engine = _engine_or_fail()
    with activity_errors():
        return journal_summary(engine.summary(brownout_ratio=float(brownout_ratio)))


def traffic_latency_ms(
    percentile: float = 99,
    phase: str = "",
    configuration: Configuration = None,
    secrets: Secrets = None,
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
    engine = _engine_or_fail()
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
