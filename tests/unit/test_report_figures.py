"""The figures of a report: verdicts, faults and milestones, secrets, odd journals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaosraysvc.report.figures import run_figures
from chaosraysvc.report.load import load_run
from chaosraysvc.report.values import mask, short_error
from tests.support.report_samples import (
    FIXTURES,
    SECRET,
    T0,
    figures_of,
    iso,
    passing_journal,
    traffic_records,
)


def test_real_head_kill_that_did_not_recover() -> None:
    f = run_figures(load_run(FIXTURES / "run1-journal.json")).to_json()
    v = f["verdict"]
    assert (v["outcome"], v["label"], v["deviated"]) == ("deviated", "Deviated", True)
    assert v["steady_state_before"] is True and v["steady_state_after"] is False
    assert any("serve-endpoints-ready returned 2" in fact for fact in v["facts"])
    [fault] = f["faults"]
    assert fault["pod"] == "rayservice-ha-raycluster-25972-head-nbzlw"
    assert fault["role"] == "head" and fault["confirmed"] and fault["awaited"]
    assert fault["offset_s"] == pytest.approx(6.593, abs=1e-3)
    assert fault["recovered"] is False and fault["recovery_s"] is None
    assert fault["missing"] == ["pod_ready", "endpoints_restored", "applications_running"]
    assert fault["error"].startswith("ActivityFailed: head pod")
    assert "did not recover within 180 s" in fault["error"]
    assert f["traffic"]["failures"] == 0
    probes = {p["name"]: p for p in f["steady_state"]["probes"]}
    assert probes["serve-endpoints-ready"]["after"]["value"] == "2"
    assert probes["zero-failed-requests"]["after"] is None  # chaoslib stopped before it
    row = f["trend"]
    assert row["outcome"] == "deviated" and row["recovered"] is False
    assert row["failures"] == 0 and row["failure_window_s"] == 0.0
    assert row["date"] == "2026-11-26 00:25:55 UTC"


def test_passing_run_with_a_failure_window(tmp_path: Path) -> None:
    f = figures_of(tmp_path, passing_journal(), traffic_records()).to_json()
    assert f["verdict"]["outcome"] == "passed"
    [fault] = f["faults"]
    assert fault["seconds_to"] == {
        "pod_ready": 5.0,
        "endpoints_restored": 10.0,
        "applications_running": 12.0,
    }
    assert fault["recovery_s"] == 12.0 and fault["new_pod"] == "rayservice-ha-head-fghij"
    t = f["traffic"]
    assert (t["requests"], t["failures"]) == (800, 50)
    assert t["longest_failure_window"]["duration_s"] == pytest.approx(2.5)
    assert t["failures_by_error"] == {"http_503": 17, "connect_refused": 17, "timeout": 16}
    assert [p["name"] for p in f["phases"]] == ["baseline", "outage", "recovery", "after"]
    assert f["about"]["target"]["raysvc_target"]["value"] == "kubernetes"
    assert f["trend"]["recovery_s"] == 12.0 and f["trend"]["failure_window_s"] == 2.5
    assert "timeline" not in t


def test_milestones_come_from_the_marks_when_the_action_left_no_output(tmp_path: Path) -> None:
    journal = passing_journal()
    action = journal["run"][0]
    action.update(output=None, status="failed", exception=["chaoslib.exceptions.ActivityFailed: x"])
    records = [r for r in traffic_records() if r.get("event") != "applications_running"]
    f = figures_of(tmp_path, journal, records).to_json()
    [fault] = f["faults"]
    assert fault["at"] == T0 + 10.0 and fault["pod"] == "rayservice-ha-head-abcde"
    assert fault["seconds_to"]["pod_ready"] == 5.0
    assert fault["missing"] == ["applications_running"] and fault["recovered"] is False


def test_a_failed_delete_without_marks_is_not_taken_for_a_deletion(tmp_path: Path) -> None:
    journal = passing_journal()
    del journal["extensions"]
    journal["run"][0].update(
        output=None,
        status="failed",
        exception=["chaoslib.exceptions.ActivityFailed: refusing to delete the head pod"],
    )
    f = figures_of(tmp_path, journal).to_json()
    [fault] = f["faults"]
    assert fault["confirmed"] is False and fault["recovered"] is None
    assert f["trend"]["recovered"] is None
    assert fault["injected"] is None  # no traffic log: nothing tells whether it happened
    assert any(
        "No fault is known to have been injected: action 'delete-head-pod' failed: "
        "ActivityFailed: refusing" in fact
        for fact in f["verdict"]["facts"]
    )
    assert f["verdict"]["outcome"] == "inconclusive"


def test_a_fault_mark_without_a_delete_action_is_still_a_fault(tmp_path: Path) -> None:
    journal = passing_journal()
    journal["run"] = []
    f = figures_of(tmp_path, journal, traffic_records()).to_json()
    [fault] = f["faults"]
    assert fault["action"] == "delete_head_pod" and fault["recovered"] is True
    assert fault["recovery_s"] == 12.0


# chaoslib ends a run "failed" when a probe of the hypothesis before errored, but "completed"
# (not deviated) when every probe ran and one was out of tolerance: neither is a pass
@pytest.mark.parametrize("status", ["failed", "completed"])
def test_steady_state_not_met_before_means_not_tested(tmp_path: Path, status: str) -> None:
    journal = passing_journal()
    journal.update(status=status, run=[], rollbacks=[])
    before = journal["steady_states"]["before"]
    before["steady_state_met"] = False
    before["probes"][0].update(output=1, tolerance_met=False)
    del before["probes"][1:]
    del journal["steady_states"]["after"]
    f = figures_of(tmp_path, journal).to_json()
    assert f["verdict"]["outcome"] == "failed" and f["verdict"]["label"] == "Not tested"
    assert f["faults"] == [] and f["trend"]["recovery_s"] is None


@pytest.mark.parametrize("status", ["interrupted", "aborted", None])
def test_an_interrupted_or_bare_journal_gives_figures(tmp_path: Path, status: str | None) -> None:
    journal: dict[str, Any] = {"experiment": {"title": "half a run"}, "start": iso(0)}
    if status:
        journal["status"] = status
    f = figures_of(tmp_path, journal).to_json()
    assert f["verdict"]["outcome"] == (status or "unknown")
    assert f["faults"] == [] and f["activities"] == [] and f["traffic"] is None
    assert f["steady_state"]["before_met"] is None
    json.dumps(f)


def test_odd_types_in_a_journal_do_not_break_the_figures(tmp_path: Path) -> None:
    journal = passing_journal()
    journal.update(run="not a list", rollbacks=[None, 3], steady_states={"before": []})
    journal["experiment"].update(tags=None, configuration=["x"], title=None)
    journal["extensions"] = {"name": "chaosraysvc"}
    f = figures_of(tmp_path, journal).to_json()
    assert f["about"]["title"] == "(untitled experiment)"
    json.dumps(f)


def test_secrets_and_configuration_values_never_appear(tmp_path: Path) -> None:
    journal = passing_journal()
    journal["rollbacks"][0]["output"] = {"redis_url": f"redis://:{SECRET}@r:6379", "token": "x"}
    f = figures_of(tmp_path, journal, traffic_records()).to_json()
    text = json.dumps(f)
    assert SECRET not in text
    assert "redis_password" not in text and 'expected_endpoints"' not in text
    assert f["about"]["target"]["serve_url"]["value"] == "https://***@serve.example:8000"


def test_mask_and_short_error() -> None:
    assert mask({"Password": "p", "nested": [{"api_token": "t", "ok": 1}]}) == {
        "Password": "***",
        "nested": [{"api_token": "***", "ok": 1}],
    }
    assert mask("see http://u:p@h/x and https://h/y") == "see http://***@h/x and https://h/y"
    exc = [
        "Traceback (most recent call last):\n",
        '  File "x.py", line 1, in f\n',
        "chaosraysvc.errors.RecoveryTimeoutError: first\n",
        "\nThe above exception was the direct cause of the following exception:\n\n",
        "chaoslib.exceptions.ActivityFailed: chaoslib.exceptions.ActivityFailed: second\n",
    ]
    assert short_error(exc) == "ActivityFailed: second"
    assert short_error(None) == "" and short_error("plain text") == "plain text"


def test_marks_of_every_milestone_count_even_if_the_action_then_failed(tmp_path: Path) -> None:
    journal = passing_journal()
    journal["run"][0].update(output=None, status="failed", exception=["ValueError: later"])
    [fault] = figures_of(tmp_path, journal, traffic_records()).to_json()["faults"]
    assert fault["recovered"] is True and fault["recovery_s"] == 12.0
    assert fault["error"] == "ValueError: later"
