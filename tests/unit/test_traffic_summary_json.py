"""The typed traffic summary keeps the journal's JSON: same keys, order and values; so does
the typed verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaosraysvc.report.verdict import OUTCOMES, Verdict
from chaosraysvc.traffic.log import read_traffic_log
from chaosraysvc.traffic.stats import journal_summary, summarize, summary_of
from chaosraysvc.traffic.summary import FailureTime, LikelyCause, PhaseFigures, TrafficSummary

FIXTURES = Path(__file__).parents[1] / "fixtures"
# Goldens written by `summarize` before the summary was typed (faulted: a head deletion
# in rate mode with failures, phases, a brownout and likely causes; run1: a real run).
GOLDEN = [
    (FIXTURES / "summaries" / "faulted-traffic.jsonl", FIXTURES / "summaries/faulted-summary.json"),
    (FIXTURES / "reports" / "run1-journal-traffic.jsonl", FIXTURES / "summaries/run1-summary.json"),
]


@pytest.mark.parametrize(("log", "golden"), GOLDEN, ids=["faulted", "run1"])
def test_summarize_json_is_unchanged(log: Path, golden: Path) -> None:
    summary = summarize(read_traffic_log(log))
    expected = json.loads(golden.read_text())
    if "timeline" not in expected:
        summary = journal_summary(summary)
    assert json.dumps(summary) == json.dumps(expected)


@pytest.mark.parametrize(("log", "golden"), GOLDEN, ids=["faulted", "run1"])
def test_typed_summary_round_trips(log: Path, golden: Path) -> None:
    summary = summarize(read_traffic_log(log))
    typed = summary_of(read_traffic_log(log))
    assert json.dumps(typed.to_json()) == json.dumps(summary)
    assert json.dumps(TrafficSummary.from_json(journal_summary(summary)).to_json()) == json.dumps(
        journal_summary(summary)
    )
    engine = {**summary, "log": "/tmp/x.jsonl", "settings": {"mode": "rate"}}
    engine |= {"max_failures_exceeded": False, "running": False}
    assert TrafficSummary.from_json(engine).to_json() == engine


def test_typed_parts_of_a_faulted_run() -> None:
    typed = summary_of(read_traffic_log(GOLDEN[0][0]))
    assert isinstance(typed.failure_time, FailureTime)
    assert typed.failure_time.seconds == 5.0
    assert isinstance(typed.phases["outage"], PhaseFigures)
    assert [c.pattern for c in typed.likely_causes] == [
        "deleted-pod-proxy",
        "surviving-proxy-stall",
    ]
    assert all(isinstance(c, LikelyCause) for c in typed.likely_causes)
    assert typed.longest_failure_window is not None and typed.longest_failure_window.failures


def test_old_and_hand_made_journals_get_defaults() -> None:
    typed = TrafficSummary.from_json(
        {"requests": 10, "failures": "many", "phases": {"baseline": None}, "brownout": 3}
    )
    assert typed.requests == 10 and typed.failures is None
    assert typed.failure_time is None and typed.brownout is None
    assert typed.phases == {"baseline": None} and typed.likely_causes == []
    assert typed.latency_ms.p50 is None and typed.latency_method == ""


def test_a_verdict_outcome_is_one_of_the_outcomes() -> None:
    shown = Verdict("passed", "Passed", "it held", "completed", False, True, True).to_json()
    assert shown["headline"] == "Passed: it held" and shown["outcome"] in OUTCOMES
    with pytest.raises(ValueError, match="not one of"):
        Verdict("great", "Great", "", "", False, None, None)
