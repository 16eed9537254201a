"""Statistics of a traffic log: pure functions, JSON-serializable results.

`summarize(read_traffic_log(path))` is what `stop_traffic` returns, what the control
puts into the journal and what reports are drawn from. Conventions:

- Times are epoch seconds; `offset_s` values are seconds since the run started (the
  header's `started`). A request belongs to the phase, bin or window of its *start*
  time `t`.
- Latency percentiles use the nearest-rank method over *successful* requests only
  (failed ones measure a timeout or a refusal, not the service): the p-th percentile
  of n sorted values is the value at rank ceil(p / 100 * n). None when there is none.
- `throughput_rps` counts every request, `success_rps` only successes, each divided by
  the duration of the run or phase.
- Phases come from the marks: `baseline` is before the first `fault`; `outage` from it
  to the first later `pod_ready`; `recovery` from there to the later of the first
  `endpoints_restored` and `applications_running` after the fault; `after` the rest. A
  missing milestone stretches the phase before it to the end of the run and leaves the
  later phases out (None). Without a `fault` mark the whole run is `baseline`. Only
  the first fault shapes the phases; every mark is listed.
- A failure window runs from the first failure of a run of consecutive failures (by
  start time) to the start of the next success; if none follows, to the end of the
  last failure (`ongoing` is then True).
- A brownout is a run of consecutive whole one-second bins whose `success_rps` is below
  `brownout_ratio` times the baseline's `success_rps`.
- The failure time is how long requests were failing, at one-second resolution: the
  total length of the one-second bins of the `timeline` in which at least one request
  (by start time) failed, the last bin cut at the run's end. Unlike the count of failed
  requests it does not depend on how fast the traffic sends: a Service refusing
  connections for 10 s counts 10 s whether 30 or 1,700 refused requests went out. Beside
  it: the requests started in those seconds and their rate, and the request rate before
  the fault (the baseline phase's `throughput_rps`; None without a fault), so that a
  count inflated by fast refusals shows as a rate well above the one before.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from chaosraysvc.traffic.attribution import likely_causes
from chaosraysvc.traffic.log import RequestRecord, TrafficLog, injected_fault
from chaosraysvc.traffic.summary import TrafficSummary

__all__ = [
    "FAILED_LISTED",
    "LATENCY_METHOD",
    "PHASES",
    "Phase",
    "Window",
    "failure_time",
    "failure_windows",
    "journal_summary",
    "latency_percentiles",
    "longest_brownout",
    "percentile",
    "phase_bounds",
    "phase_requests",
    "run_bounds",
    "summarize",
    "summary_of",
    "timeline",
]

LATENCY_METHOD = "nearest-rank percentiles over successful requests"
PHASES = ("baseline", "outage", "recovery", "after")
RECOVERY_EVENTS = ("endpoints_restored", "applications_running")
NO_ENDPOINT = "-"
FAILED_LISTED = 20  # failed requests listed one by one in a summary


@dataclass(frozen=True)
class Phase:
    """A named time span of the run, [start, end)."""

    name: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        """Return the phase's length in seconds."""
        return max(self.end - self.start, 0.0)


@dataclass(frozen=True)
class Window:
    """A span of consecutive failures."""

    start: float
    end: float
    failures: int
    ongoing: bool = False

    @property
    def duration(self) -> float:
        """Return the window's length in seconds."""
        return max(self.end - self.start, 0.0)


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Return the nearest-rank `p`-th percentile of already sorted values (None if empty)."""
    if not sorted_values:
        return None
    if p <= 0:
        return sorted_values[0]
    rank = math.ceil(p / 100.0 * len(sorted_values))
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


def latency_percentiles(requests: Iterable[RequestRecord]) -> dict[str, float | None]:
    """Return p50/p95/p99/max/mean latency (ms) of the successful `requests`."""
    values = sorted(r["ms"] for r in requests if r["ok"])
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": values[-1] if values else None,
        "mean": round(sum(values) / len(values), 3) if values else None,
    }


def run_bounds(log: TrafficLog) -> tuple[float, float] | None:
    """Return the run's (start, end) epoch seconds, None for an empty log.

    The start is the header's `started` (else the first request); the end is the end
    line's time, else the latest request completion or mark.
    """
    starts = [r["t"] for r in log.requests[:1]]
    start = log.header.get("started", starts[0] if starts else None)
    if start is None:
        return None
    if log.end is not None and isinstance(log.end.get("t"), int | float):
        end = float(log.end["t"])
    else:
        ends = [r["t"] + r["ms"] / 1000.0 for r in log.requests]
        ends += [m["t"] for m in log.marks]
        end = max(ends, default=start)
    return float(start), max(float(end), float(start))


def _first_mark(log: TrafficLog, event: str, after: float) -> float | None:
    for mark in log.marks:
        if mark["event"] == event and mark["t"] >= after:
            return float(mark["t"])
    return None


def _fault_t(log: TrafficLog) -> float | None:
    mark = injected_fault(log)
    return float(mark["t"]) if mark is not None else None


def phase_bounds(log: TrafficLog) -> dict[str, Phase | None]:
    """Return the four phases (None for those the marks do not reach)."""
    phases: dict[str, Phase | None] = dict.fromkeys(PHASES)
    bounds = run_bounds(log)
    if bounds is None:
        return phases
    start, end = bounds
    fault = _fault_t(log)
    if fault is None:
        phases["baseline"] = Phase("baseline", start, end)
        return phases
    fault = min(max(fault, start), end)
    phases["baseline"] = Phase("baseline", start, fault)
    ready = _first_mark(log, "pod_ready", fault)
    if ready is None:
        phases["outage"] = Phase("outage", fault, end)
        return phases
    ready = min(ready, end)
    phases["outage"] = Phase("outage", fault, ready)
    restored = [t for e in RECOVERY_EVENTS if (t := _first_mark(log, e, fault)) is not None]
    if not restored:
        phases["recovery"] = Phase("recovery", ready, end)
        return phases
    recovered = min(max(max(restored), ready), end)
    phases["recovery"] = Phase("recovery", ready, recovered)
    phases["after"] = Phase("after", recovered, end)
    return phases


def phase_requests(log: TrafficLog, phase: Phase) -> list[RequestRecord]:
    """Return the requests that started in `phase` (the last phase includes its end)."""
    bounds = run_bounds(log)
    inclusive_end = bounds is not None and phase.end >= bounds[1]
    return [
        r
        for r in log.requests
        if phase.start <= r["t"] < phase.end or (inclusive_end and r["t"] >= phase.start)
    ]


def failure_windows(requests: Sequence[RequestRecord]) -> list[Window]:
    """Return the runs of consecutive failures of `requests` (sorted by start time)."""
    windows: list[Window] = []
    first: RequestRecord | None = None
    last: RequestRecord | None = None
    count = 0
    for r in requests:
        if not r["ok"]:
            if first is None:
                first, count = r, 0
            last = r
            count += 1
        elif first is not None:
            windows.append(Window(first["t"], r["t"], count))
            first = None
    if first is not None and last is not None:
        windows.append(Window(first["t"], last["t"] + last["ms"] / 1000.0, count, ongoing=True))
    return windows


def _bins(log: TrafficLog, start: float, count: int) -> list[list[RequestRecord]]:
    bins: list[list[RequestRecord]] = [[] for _ in range(count)]
    for r in log.requests:
        i = int(math.floor(r["t"] - start))
        if 0 <= i < count:
            bins[i].append(r)
    return bins


def timeline(log: TrafficLog) -> list[dict[str, Any]]:
    """Return one entry per second of the run: successes, failures, p50 and p99 (ms)."""
    bounds = run_bounds(log)
    if bounds is None or not log.requests:
        return []
    start, end = bounds
    last_start = log.requests[-1]["t"]
    count = max(int(math.floor(max(end, last_start) - start)) + 1, 1)
    rows = []
    for i, reqs in enumerate(_bins(log, start, count)):
        values = sorted(r["ms"] for r in reqs if r["ok"])
        rows.append(
            {
                "second": i,
                "successes": len(values),
                "failures": len(reqs) - len(values),
                "p50": percentile(values, 50),
                "p99": percentile(values, 99),
            }
        )
    return rows


def failure_time(log: TrafficLog, before_fault_rps: float | None = None) -> dict[str, Any] | None:
    """Return how long requests were failing and at what rate (None without a failure).

    Keys: `seconds` (the total length of the one-second bins with a failed request, see
    the module docstring), `spans` (runs of consecutive such bins), `first_offset_s` and
    `last_offset_s` (where the first starts and the last ends), `requests` and `failures`
    started in those bins, `requests_rps` and `failures_rps` (each divided by `seconds`)
    and `before_fault_rps` as given.
    """
    bounds = run_bounds(log)
    if bounds is None or not any(not r["ok"] for r in log.requests):
        return None
    start, end = bounds
    last_start = log.requests[-1]["t"]
    count = max(int(math.floor(max(end, last_start) - start)) + 1, 1)
    seconds, requests, failures, spans = 0.0, 0, 0, 0
    first: int | None = None
    last = -2
    for i, reqs in enumerate(_bins(log, start, count)):
        failed = sum(1 for r in reqs if not r["ok"])
        if not failed:
            continue
        if first is None:
            first = i
        if i != last + 1:
            spans += 1
        last = i
        seconds += min(max(end - (start + i), 0.0), 1.0)
        requests += len(reqs)
        failures += failed
    if first is None:  # every failure started outside the run's bins
        return None
    return {
        "seconds": round(seconds, 3),
        "spans": spans,
        "first_offset_s": float(first),
        "last_offset_s": round(min(last + 1.0, end - start), 3),
        "requests": requests,
        "failures": failures,
        "requests_rps": round(requests / seconds, 3) if seconds > 0 else None,
        "failures_rps": round(failures / seconds, 3) if seconds > 0 else None,
        "before_fault_rps": before_fault_rps,
    }


def longest_brownout(
    log: TrafficLog, baseline_success_rps: float, ratio: float = 0.5
) -> dict[str, Any] | None:
    """Return the longest run of whole seconds below `ratio` x `baseline_success_rps`."""
    bounds = run_bounds(log)
    threshold = ratio * baseline_success_rps
    if bounds is None or threshold <= 0:
        return None
    start, end = bounds
    whole = int(math.floor(end - start))
    best: tuple[int, int] | None = None
    run_start: int | None = None
    successes = [sum(1 for r in b if r["ok"]) for b in _bins(log, start, whole)]
    for i, value in enumerate([*successes, math.inf]):
        if value < threshold:
            if run_start is None:
                run_start = i
        elif run_start is not None:
            if best is None or i - run_start > best[1] - best[0]:
                best = (run_start, i)
            run_start = None
    if best is None:
        return None
    first, stop = best
    return {
        "start": start + first,
        "end": start + stop,
        "offset_s": float(first),
        "duration_s": float(stop - first),
        "min_success_rps": float(min(successes[first:stop])),
        "threshold_rps": round(threshold, 3),
    }


def _group(requests: Sequence[RequestRecord], duration: float | None) -> dict[str, Any]:
    n = len(requests)
    failures = sum(1 for r in requests if not r["ok"])
    out: dict[str, Any] = {
        "requests": n,
        "successes": n - failures,
        "failures": failures,
        "success_rate": round((n - failures) / n, 6) if n else None,
    }
    if duration is not None:
        out["throughput_rps"] = round(n / duration, 3) if duration > 0 else None
        out["success_rps"] = round((n - failures) / duration, 3) if duration > 0 else None
    out["latency_ms"] = latency_percentiles(requests)
    return out


def _endpoint_group(requests: Sequence[RequestRecord], start: float) -> dict[str, Any]:
    """Return one endpoint's statistics with its own failure windows.

    With one stream per endpoint, the run's windows are cut by the other endpoints'
    successes; an endpoint's own windows say how long *it* failed.
    """
    out = _group(requests, None)
    windows = failure_windows(requests)
    longest = max(windows, key=lambda w: w.duration) if windows else None
    out["longest_failure_window"] = _window_dict(longest, start)
    out["failure_windows"] = len(windows)
    return out


def _failed_dict(r: RequestRecord, start: float, fault: float | None) -> dict[str, Any]:
    return {
        "t": r["t"],
        "offset_s": round(r["t"] - start, 6),
        "after_fault_s": round(r["t"] - fault, 6) if fault is not None else None,
        "err": r.get("err"),
        "code": r.get("code"),
        "ep": r.get("ep"),
        "ms": r.get("ms"),
        "id": r.get("id"),
    }


def _window_dict(window: Window | None, start: float) -> dict[str, Any] | None:
    if window is None:
        return None
    return {
        "start": window.start,
        "end": window.end,
        "offset_s": round(window.start - start, 6),
        "duration_s": round(window.duration, 6),
        "failures": window.failures,
        "ongoing": window.ongoing,
    }


def _rate_check(log: TrafficLog) -> dict[str, Any] | None:
    if log.header.get("mode") != "rate":
        return None
    requested = float(log.header.get("rate") or 0.0)
    groups = max(len(log.header.get("endpoints") or []), 1)
    if log.header.get("endpoint_mode") == "per_endpoint":
        requested *= groups
    schedule = (log.end or {}).get("schedule") or {}
    reqs = log.requests
    achieved = None
    if len(reqs) >= 2 and reqs[-1]["t"] > reqs[0]["t"]:
        achieved = round((len(reqs) - 1) / (reqs[-1]["t"] - reqs[0]["t"]), 3)
    skipped = int(schedule.get("skipped", 0))
    kept_up = achieved is not None and achieved >= 0.98 * requested and skipped == 0
    return {
        "requested_rps": requested,
        "achieved_rps": achieved,
        "kept_up": kept_up,
        "scheduled": schedule.get("scheduled"),
        "sent": schedule.get("sent"),
        "skipped": skipped,
        "pending": schedule.get("pending"),
        "late": schedule.get("late"),
        "max_late_ms": schedule.get("max_late_ms"),
        "behind_marks": sum(1 for m in log.marks if m["event"] == "rate_behind"),
    }


def summarize(log: TrafficLog, brownout_ratio: float = 0.5) -> dict[str, Any]:
    """Return the statistics of a traffic log as a JSON-serializable dict.

    Keys: `run` (header facts, `complete`, `truncated`), `requests`, `successes`,
    `failures`, `success_rate`, `throughput_rps`, `success_rps`, `latency_ms`
    (p50/p95/p99/max/mean) with `latency_method`, `failures_by_error`,
    `failures_by_endpoint` and `by_endpoint` (label "-" for requests without one; each
    with the group statistics and its own `longest_failure_window` and `failure_windows`),
    `longest_failure_window`, `failure_windows`, `failure_time` (how long requests were
    failing and at what rate, beside the rate before the fault; None without a failure),
    `failed_requests` (the first
    `FAILED_LISTED` failed requests by start time: t, offset_s, after_fault_s, err, code,
    ep, ms and the request id to look for in the service's logs),
    `fault_to_last_failure_s`, `phases`
    (baseline/outage/recovery/after, each None or with start, end, offset_s,
    duration_s and the group statistics), `brownout`, `timeline`, `marks` and, in
    rate mode, `rate_check`; `likely_causes` names known failure patterns
    (`chaosraysvc.traffic.attribution`). See the module docstring for the definitions.
    """
    bounds = run_bounds(log)
    start, end = bounds if bounds is not None else (0.0, 0.0)
    duration = end - start if bounds is not None else None
    requests = log.requests
    summary: dict[str, Any] = {
        "run": {
            "started": log.header.get("started"),
            "ended": end if bounds is not None else None,
            "duration_s": round(duration, 6) if duration is not None else None,
            "mode": log.header.get("mode"),
            "rate": log.header.get("rate"),
            "concurrency": log.header.get("concurrency"),
            "timeout_s": log.header.get("timeout_s"),
            "url": log.header.get("url"),
            "path": log.header.get("path"),
            "endpoints": log.header.get("endpoints", []),
            "method": log.header.get("method", "POST"),
            "expected_status": log.header.get("expected_status", []),
            "request_id_header": log.header.get("request_id_header"),
            "complete": log.end is not None,
            "truncated": log.truncated,
        }
    }
    summary.update(_group(requests, duration))
    summary["latency_method"] = LATENCY_METHOD
    failed = [r for r in requests if not r["ok"]]
    summary["failures_by_error"] = dict(Counter(str(r["err"]) for r in failed).most_common())
    summary["failures_by_endpoint"] = dict(
        Counter(r.get("ep") or NO_ENDPOINT for r in failed).most_common()
    )
    by_ep: dict[str, list[RequestRecord]] = {}
    for r in requests:
        by_ep.setdefault(r.get("ep") or NO_ENDPOINT, []).append(r)
    summary["by_endpoint"] = {
        label: _endpoint_group(reqs, start) for label, reqs in sorted(by_ep.items())
    }
    windows = failure_windows(requests)
    longest = max(windows, key=lambda w: w.duration, default=None)
    summary["longest_failure_window"] = _window_dict(longest, start)
    summary["failure_windows"] = len(windows)

    fault = _fault_t(log)
    after_fault = [r for r in failed if fault is not None and r["t"] >= fault]
    summary["failed_requests"] = [_failed_dict(r, start, fault) for r in failed[:FAILED_LISTED]]
    summary["failures_after_fault"] = len(after_fault) if fault is not None else None
    summary["fault_to_last_failure_s"] = (
        round(after_fault[-1]["t"] - fault, 6) if fault is not None and after_fault else None
    )

    phases: dict[str, Any] = {}
    for name, phase in phase_bounds(log).items():
        if phase is None:
            phases[name] = None
            continue
        stats = _group(phase_requests(log, phase), phase.duration)
        phases[name] = {
            "start": phase.start,
            "end": phase.end,
            "offset_s": round(phase.start - start, 6),
            "duration_s": round(phase.duration, 6),
            **stats,
        }
    summary["phases"] = phases
    baseline = phases.get("baseline")
    baseline_rps = (baseline or {}).get("success_rps") or 0.0
    summary["brownout_ratio"] = brownout_ratio
    summary["brownout"] = longest_brownout(log, baseline_rps, brownout_ratio)
    before = (baseline or {}).get("throughput_rps") if phases.get("outage") else None
    summary["failure_time"] = failure_time(log, before)
    summary["timeline"] = timeline(log)
    summary["marks"] = [
        {
            "t": m["t"],
            "offset_s": round(m["t"] - start, 6),
            "event": m["event"],
            "detail": m.get("detail", {}),
        }
        for m in log.marks
    ]
    summary["rate_check"] = _rate_check(log)
    summary["likely_causes"] = likely_causes(log, summary)
    return summary


def summary_of(log: TrafficLog, brownout_ratio: float = 0.5) -> TrafficSummary:
    """Return `summarize(log, brownout_ratio)` as a typed `TrafficSummary`."""
    return TrafficSummary.from_json(summarize(log, brownout_ratio))


def journal_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """Return `summary` without its bulky per-second `timeline` (kept in the log)."""
    return {k: v for k, v in summary.items() if k != "timeline"}
