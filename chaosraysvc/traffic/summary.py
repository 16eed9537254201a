"""The traffic summary as typed values: what `stats.summarize` computes, what reports read.

`TrafficSummary.from_json(summarize(log))` gives the typed summary; `to_json()` gives
back the very JSON that the traffic control records in the journal and that
`stop_traffic` returns (Chaos Toolkit journals and tolerances stay plain JSON)::

    {"run": {...}, "requests": 120, "failures": 3, "latency_ms": {"p50": 12.0, ...},
     "longest_failure_window": {"start": ..., "duration_s": 1.2, ...} | null,
     "failure_time": {"seconds": 2.0, ...} | null, "phases": {"baseline": {...}, ...},
     "brownout": {...} | null, "likely_causes": [{"pattern": ..., ...}], ...}

`from_json` reads journals written by any version: a missing key, or one holding a value
of the wrong type (an older or hand-made journal), gets its default (None, an empty
collection or ""); nested parts that are not objects are None.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

__all__ = [
    "Brownout",
    "FailureTime",
    "FailureWindow",
    "Latency",
    "LikelyCause",
    "PhaseFigures",
    "TrafficSummary",
]


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class Latency:
    """Latency percentiles (ms) of successful requests; None when there was none."""

    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None
    mean: float | None = None

    def to_json(self) -> dict[str, float | None]:
        """Return the JSON object of the summary's `latency_ms`."""
        return {
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
            "max": self.max,
            "mean": self.mean,
        }

    @classmethod
    def from_json(cls, raw: Any) -> Latency:
        """Return the latency of a `latency_ms` object (None for what it lacks)."""
        data = _dict(raw)
        return cls(*(_num(data.get(f.name)) for f in fields(cls)))


@dataclass(frozen=True)
class FailureWindow:
    """A run of consecutive failures, as the summary gives it (epoch and offset seconds)."""

    start: float | None = None
    end: float | None = None
    offset_s: float | None = None
    duration_s: float | None = None
    failures: int | None = None
    ongoing: bool = False

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object of a `longest_failure_window`."""
        return {
            "start": self.start,
            "end": self.end,
            "offset_s": self.offset_s,
            "duration_s": self.duration_s,
            "failures": self.failures,
            "ongoing": self.ongoing,
        }

    @classmethod
    def from_json(cls, raw: Any) -> FailureWindow | None:
        """Return the window of a JSON object, None for anything else."""
        if not isinstance(raw, dict):
            return None
        return cls(
            start=_num(raw.get("start")),
            end=_num(raw.get("end")),
            offset_s=_num(raw.get("offset_s")),
            duration_s=_num(raw.get("duration_s")),
            failures=_int(raw.get("failures")),
            ongoing=raw.get("ongoing") is True,
        )


@dataclass(frozen=True)
class FailureTime:
    """How long requests were failing and at what rate (`stats.failure_time`)."""

    seconds: float | None = None
    spans: int | None = None
    first_offset_s: float | None = None
    last_offset_s: float | None = None
    requests: int | None = None
    failures: int | None = None
    requests_rps: float | None = None
    failures_rps: float | None = None
    before_fault_rps: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object of the summary's `failure_time`."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, raw: Any) -> FailureTime | None:
        """Return the failure time of a JSON object, None for anything else."""
        if not isinstance(raw, dict):
            return None
        return cls(
            seconds=_num(raw.get("seconds")),
            spans=_int(raw.get("spans")),
            first_offset_s=_num(raw.get("first_offset_s")),
            last_offset_s=_num(raw.get("last_offset_s")),
            requests=_int(raw.get("requests")),
            failures=_int(raw.get("failures")),
            requests_rps=_num(raw.get("requests_rps")),
            failures_rps=_num(raw.get("failures_rps")),
            before_fault_rps=_num(raw.get("before_fault_rps")),
        )


@dataclass(frozen=True)
class Brownout:
    """The longest run of whole seconds below the brownout threshold."""

    start: float | None = None
    end: float | None = None
    offset_s: float | None = None
    duration_s: float | None = None
    min_success_rps: float | None = None
    threshold_rps: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object of the summary's `brownout`."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, raw: Any) -> Brownout | None:
        """Return the brownout of a JSON object, None for anything else."""
        if not isinstance(raw, dict):
            return None
        return cls(**{f.name: _num(raw.get(f.name)) for f in fields(cls)})


@dataclass(frozen=True)
class LikelyCause:
    """A known failure pattern the failures match (`traffic.attribution`)."""

    pattern: str = ""
    failures: int | None = None
    evidence: str = ""
    risk: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object of one of the summary's `likely_causes`."""
        return {
            "pattern": self.pattern,
            "failures": self.failures,
            "evidence": self.evidence,
            "risk": self.risk,
        }

    @classmethod
    def from_json(cls, raw: Any) -> LikelyCause | None:
        """Return the cause of a JSON object, None for anything else."""
        if not isinstance(raw, dict):
            return None
        risk = raw.get("risk")
        return cls(
            pattern=str(raw.get("pattern") or ""),
            failures=_int(raw.get("failures")),
            evidence=str(raw.get("evidence") or ""),
            risk=risk if isinstance(risk, str) else None,
        )


@dataclass(frozen=True)
class PhaseFigures:
    """One phase of the run (baseline, outage, recovery, after) and its statistics."""

    start: float | None = None
    end: float | None = None
    offset_s: float | None = None
    duration_s: float | None = None
    requests: int | None = None
    successes: int | None = None
    failures: int | None = None
    success_rate: float | None = None
    throughput_rps: float | None = None
    success_rps: float | None = None
    latency_ms: Latency = field(default_factory=Latency)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object of one of the summary's `phases`."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["latency_ms"] = self.latency_ms.to_json()
        return out

    @classmethod
    def from_json(cls, raw: Any) -> PhaseFigures | None:
        """Return the phase of a JSON object, None for anything else (a phase not reached)."""
        if not isinstance(raw, dict):
            return None
        ints = ("requests", "successes", "failures")
        values: dict[str, Any] = {
            f.name: (_int if f.name in ints else _num)(raw.get(f.name))
            for f in fields(cls)
            if f.name != "latency_ms"
        }
        return cls(**values, latency_ms=Latency.from_json(raw.get("latency_ms")))


# The summary's keys in the order `to_json` writes them; the extras come from the engine
# (`TrafficEngine.summary`), not from `summarize`, and are written only when set.
_EXTRAS = ("log", "settings", "max_failures_exceeded", "running")


@dataclass(frozen=True)
class TrafficSummary:
    """The statistics of a traffic log (see `chaosraysvc.traffic.stats` for the definitions).

    `run`, `by_endpoint`, `failed_requests`, `marks`, `rate_check` and `timeline` stay
    JSON objects as `summarize` writes them. `timeline` is None in the journal's copy
    (`journal_summary` leaves it out); `log`, `settings`, `max_failures_exceeded` and
    `running` are None unless the traffic engine added them.
    """

    run: dict[str, Any] = field(default_factory=dict)
    requests: int | None = None
    successes: int | None = None
    failures: int | None = None
    success_rate: float | None = None
    throughput_rps: float | None = None
    success_rps: float | None = None
    latency_ms: Latency = field(default_factory=Latency)
    latency_method: str = ""
    failures_by_error: dict[str, int] = field(default_factory=dict)
    failures_by_endpoint: dict[str, int] = field(default_factory=dict)
    by_endpoint: dict[str, dict[str, Any]] = field(default_factory=dict)
    longest_failure_window: FailureWindow | None = None
    failure_windows: int | None = None
    failed_requests: list[dict[str, Any]] = field(default_factory=list)
    failures_after_fault: int | None = None
    fault_to_last_failure_s: float | None = None
    phases: dict[str, PhaseFigures | None] = field(default_factory=dict)
    brownout_ratio: float | None = None
    brownout: Brownout | None = None
    failure_time: FailureTime | None = None
    timeline: list[dict[str, Any]] | None = None
    marks: list[dict[str, Any]] = field(default_factory=list)
    rate_check: dict[str, Any] | None = None
    likely_causes: list[LikelyCause] = field(default_factory=list)
    log: str | None = None
    settings: dict[str, Any] | None = None
    max_failures_exceeded: bool | None = None
    running: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the summary as the JSON object `summarize` returns and journals hold."""
        window = self.longest_failure_window
        out: dict[str, Any] = {
            "run": self.run,
            "requests": self.requests,
            "successes": self.successes,
            "failures": self.failures,
            "success_rate": self.success_rate,
            "throughput_rps": self.throughput_rps,
            "success_rps": self.success_rps,
            "latency_ms": self.latency_ms.to_json(),
            "latency_method": self.latency_method,
            "failures_by_error": self.failures_by_error,
            "failures_by_endpoint": self.failures_by_endpoint,
            "by_endpoint": self.by_endpoint,
            "longest_failure_window": window.to_json() if window else None,
            "failure_windows": self.failure_windows,
            "failed_requests": self.failed_requests,
            "failures_after_fault": self.failures_after_fault,
            "fault_to_last_failure_s": self.fault_to_last_failure_s,
            "phases": {k: p.to_json() if p else None for k, p in self.phases.items()},
            "brownout_ratio": self.brownout_ratio,
            "brownout": self.brownout.to_json() if self.brownout else None,
            "failure_time": self.failure_time.to_json() if self.failure_time else None,
        }
        if self.timeline is not None:
            out["timeline"] = self.timeline
        out["marks"] = self.marks
        out["rate_check"] = self.rate_check
        out["likely_causes"] = [c.to_json() for c in self.likely_causes]
        for key in _EXTRAS:
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> TrafficSummary:
        """Return the typed summary of a JSON object (defaults for what it lacks)."""
        rate_check, timeline = raw.get("rate_check"), raw.get("timeline")
        log, settings = raw.get("log"), raw.get("settings")
        exceeded, running = raw.get("max_failures_exceeded"), raw.get("running")
        method = raw.get("latency_method")
        causes = (LikelyCause.from_json(c) for c in _list(raw.get("likely_causes")))
        return cls(
            run=_dict(raw.get("run")),
            requests=_int(raw.get("requests")),
            successes=_int(raw.get("successes")),
            failures=_int(raw.get("failures")),
            success_rate=_num(raw.get("success_rate")),
            throughput_rps=_num(raw.get("throughput_rps")),
            success_rps=_num(raw.get("success_rps")),
            latency_ms=Latency.from_json(raw.get("latency_ms")),
            latency_method=method if isinstance(method, str) else "",
            failures_by_error=_dict(raw.get("failures_by_error")),
            failures_by_endpoint=_dict(raw.get("failures_by_endpoint")),
            by_endpoint=_dict(raw.get("by_endpoint")),
            longest_failure_window=FailureWindow.from_json(raw.get("longest_failure_window")),
            failure_windows=_int(raw.get("failure_windows")),
            failed_requests=_list(raw.get("failed_requests")),
            failures_after_fault=_int(raw.get("failures_after_fault")),
            fault_to_last_failure_s=_num(raw.get("fault_to_last_failure_s")),
            phases={str(k): PhaseFigures.from_json(p) for k, p in _dict(raw.get("phases")).items()},
            brownout_ratio=_num(raw.get("brownout_ratio")),
            brownout=Brownout.from_json(raw.get("brownout")),
            failure_time=FailureTime.from_json(raw.get("failure_time")),
            timeline=timeline if isinstance(timeline, list) else None,
            marks=_list(raw.get("marks")),
            rate_check=rate_check if isinstance(rate_check, dict) else None,
            likely_causes=[c for c in causes if c is not None],
            log=log if isinstance(log, str) else None,
            settings=settings if isinstance(settings, dict) else None,
            max_failures_exceeded=exceeded if isinstance(exceeded, bool) else None,
            running=running if isinstance(running, bool) else None,
        )
