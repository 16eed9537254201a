"""Read pushed or written Prometheus metrics back, and the values a report shows for a run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from chaosraysvc.report.values import epoch
from chaosraysvc.report.verdict import OUTCOMES

Key = tuple[str, tuple[tuple[str, str], ...]]


def samples(text: str, labels: Mapping[str, str]) -> dict[Key, float]:
    """Return {(name, sorted extra labels): value} of a metrics text; each sample has `labels`."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            extra = dict(sample.labels)
            assert {k: extra.pop(k, None) for k in labels} == dict(labels), sample
            found[(sample.name, tuple(sorted(extra.items())))] = sample.value
    return found


def expected_samples(figures: dict[str, Any], journal: dict[str, Any]) -> dict[Key, float]:
    """Return the values the report's `figures` show for a run, keyed as `samples`."""
    traffic = figures["traffic"]
    window = traffic["longest_failure_window"]
    expected: dict[Key, float] = {
        ("chaosraysvc_run_outcome", (("outcome", outcome),)): float(
            outcome == figures["verdict"]["outcome"]
        )
        for outcome in OUTCOMES
    }
    expected |= {
        ("chaosraysvc_run_deviated", ()): float(figures["verdict"]["deviated"]),
        ("chaosraysvc_run_requests", ()): traffic["requests"],
        ("chaosraysvc_run_failed_requests", ()): traffic["failures"],
        ("chaosraysvc_run_longest_failure_window_seconds", ()): window["duration_s"]
        if window
        else 0.0,
        ("chaosraysvc_run_brownout_seconds", ()): (traffic["brownout"] or {}).get(
            "duration_s", 0.0
        ),
    }
    end = epoch(journal.get("end"))
    if end is not None:
        expected[("chaosraysvc_run_end_timestamp_seconds", ())] = end
    faults = [f for f in figures["faults"] if f["confirmed"] and not f["dry_run"]]
    for milestone, seconds in (faults[0]["seconds_to"] if faults else {}).items():
        if seconds is not None:
            expected[("chaosraysvc_run_recovery_seconds", (("milestone", milestone),))] = seconds
    for phase in figures["phases"]:
        if phase["latency_ms"]["p99"] is not None:
            key = ("chaosraysvc_run_latency_p99_seconds", (("phase", phase["name"]),))
            expected[key] = phase["latency_ms"]["p99"] / 1000
    return expected
