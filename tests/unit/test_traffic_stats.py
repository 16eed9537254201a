"""Statistics over traffic logs: phases, windows, brownouts, percentiles, edge cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaosraysvc.traffic.log import RequestRecord, TrafficLog
from chaosraysvc.traffic.stats import (
    failure_windows,
    percentile,
    phase_bounds,
    summarize,
)

T0 = 1_000.0


def req(
    t: float,
    ok: bool = True,
    ms: float = 10.0,
    err: str | None = None,
    ep: str | None = None,
    code: int | None = 200,
) -> RequestRecord:
    return {
        "kind": "req",
        "t": T0 + t,
        "ms": ms,
        "ok": ok,
        "code": code if ok else None,
        "err": None if ok else (err or "timeout"),
        "ep": ep,
    }


def mk(
    requests: list[RequestRecord],
    marks: list[tuple[float, str]] = (),
    end: float | None = None,
    **header: Any,
) -> TrafficLog:  # type: ignore[assignment]
    head = {
        "kind": "run",
        "version": 1,
        "started": T0,
        "mode": "sequential",
        "rate": 0,
        "concurrency": 1,
        "timeout_s": 2.0,
        "url": "http://x",
        "path": "/fruit/",
        "endpoints": [],
    }
    head.update(header)
    return TrafficLog(
        path=Path("mem.jsonl"),
        header=head,
        requests=sorted(requests, key=lambda r: r["t"]),
        marks=[{"kind": "mark", "t": T0 + t, "event": e, "detail": {}} for t, e in marks],
        end=None
        if end is None
        else {
            "kind": "end",
            "t": T0 + end,
            "requests": len(requests),
            "failures": sum(not r["ok"] for r in requests),
        },
    )


def steady(
    start: float, stop: float, per_s: int = 10, ok: bool = True, **kw: Any
) -> list[RequestRecord]:
    n = int(round((stop - start) * per_s))
    return [req(start + i / per_s, ok=ok, **kw) for i in range(n)]


def test_empty_log_gives_empty_but_complete_summary() -> None:
    empty = TrafficLog(path=Path("e.jsonl"))
    s = summarize(empty)
    json.dumps(s)
    assert s["requests"] == 0 and s["failures"] == 0
    assert s["success_rate"] is None
    assert s["latency_ms"]["p99"] is None
    assert s["longest_failure_window"] is None and s["brownout"] is None
    assert s["timeline"] == [] and s["marks"] == []
    assert all(v is None for v in s["phases"].values())


def test_header_only_run_has_a_baseline_with_no_requests() -> None:
    s = summarize(mk([], end=5.0))
    assert s["run"]["duration_s"] == 5.0 and s["run"]["complete"] is True
    base = s["phases"]["baseline"]
    assert base["requests"] == 0 and base["throughput_rps"] == 0.0
    assert s["phases"]["outage"] is None


def test_percentiles_are_nearest_rank_over_successes_only() -> None:
    reqs = [req(i * 0.01, ms=float(i + 1)) for i in range(100)]
    reqs.append(req(2.0, ok=False, ms=2000.0))  # a timeout must not count
    s = summarize(mk(reqs, end=3.0))
    assert s["latency_ms"] == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0, "mean": 50.5}
    assert "nearest-rank" in s["latency_method"]
    assert percentile([], 50) is None
    assert percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0, 3.0], 0) == 1.0


def test_phases_follow_the_marks() -> None:
    reqs = steady(0, 60)
    marks = [
        (10, "fault"),
        (30, "pod_ready"),
        (35, "endpoints_restored"),
        (40, "applications_running"),
    ]
    s = summarize(mk(reqs, marks, end=60))
    p = s["phases"]
    assert (p["baseline"]["offset_s"], p["baseline"]["duration_s"]) == (0.0, 10.0)
    assert (p["outage"]["offset_s"], p["outage"]["duration_s"]) == (10.0, 20.0)
    assert (p["recovery"]["offset_s"], p["recovery"]["duration_s"]) == (30.0, 10.0)
    assert (p["after"]["offset_s"], p["after"]["duration_s"]) == (40.0, 20.0)
    assert [p[n]["requests"] for n in ("baseline", "outage", "recovery", "after")] == [
        100,
        200,
        100,
        200,
    ]
    assert p["outage"]["throughput_rps"] == 10.0
    assert sum(p[n]["requests"] for n in p) == s["requests"] == 600


def test_fault_without_later_milestone_stretches_outage_to_the_end() -> None:
    s = summarize(mk(steady(0, 20), [(5, "fault")], end=20))
    assert s["phases"]["outage"]["duration_s"] == 15.0
    assert s["phases"]["recovery"] is None and s["phases"]["after"] is None


def test_pod_ready_without_restore_marks_leaves_recovery_open() -> None:
    s = summarize(mk(steady(0, 20), [(5, "fault"), (8, "pod_ready")], end=20))
    assert s["phases"]["recovery"]["duration_s"] == 12.0
    assert s["phases"]["after"] is None


def test_milestones_before_the_fault_are_ignored_and_first_fault_wins() -> None:
    marks = [
        (1, "pod_ready"),
        (5, "fault"),
        (9, "fault"),
        (12, "pod_ready"),
        (14, "applications_running"),
    ]
    log = mk(steady(0, 20), marks, end=20)
    phases = phase_bounds(log)
    assert phases["outage"] is not None and phases["outage"].start == T0 + 5
    assert phases["outage"].end == T0 + 12
    assert phases["after"] is not None and phases["after"].start == T0 + 14
    s = summarize(log)
    assert [m["event"] for m in s["marks"]] == [e for _, e in marks]
    assert s["marks"][1]["offset_s"] == 5.0


def test_no_marks_makes_the_whole_run_baseline() -> None:
    s = summarize(mk(steady(0, 10), end=10))
    assert s["phases"]["baseline"]["requests"] == 100
    assert s["fault_to_last_failure_s"] is None and s["failures_after_fault"] is None


def test_failure_windows_run_from_first_failure_to_next_success() -> None:
    reqs = [
        req(0),
        req(1),
        req(2, ok=False),
        req(3, ok=False, err="connect_refused"),
        req(4, ok=False),
        req(6),
        req(7, ok=False, ms=500),
        req(8),
    ]
    windows = failure_windows(sorted(reqs, key=lambda r: r["t"]))
    assert [(w.start - T0, w.end - T0, w.failures) for w in windows] == [(2, 6, 3), (7, 8, 1)]
    s = summarize(mk(reqs, [(1.5, "fault")], end=9))
    lw = s["longest_failure_window"]
    assert (lw["offset_s"], lw["duration_s"], lw["failures"], lw["ongoing"]) == (2.0, 4.0, 3, False)
    assert s["failure_windows"] == 2
    assert s["failures_by_error"] == {"timeout": 3, "connect_refused": 1}
    assert s["fault_to_last_failure_s"] == 5.5
    assert s["failures_after_fault"] == 4


def test_failure_window_still_open_at_the_end_is_ongoing() -> None:
    reqs = [req(0), req(1, ok=False, ms=2000.0), req(3, ok=False, ms=2000.0)]
    s = summarize(mk(reqs))
    lw = s["longest_failure_window"]
    assert lw["ongoing"] is True and lw["duration_s"] == pytest.approx(4.0)
    assert s["run"]["complete"] is False
    assert s["run"]["duration_s"] == pytest.approx(5.0)  # last completion


def test_brownout_finds_slow_seconds_without_failures() -> None:
    reqs = steady(0, 10) + steady(10, 15, per_s=2, ms=400.0) + steady(15, 30)
    s = summarize(mk(reqs, [(10, "fault"), (12, "pod_ready"), (20, "endpoints_restored")], end=30))
    b = s["brownout"]
    assert b is not None
    assert (b["offset_s"], b["duration_s"]) == (10.0, 5.0)
    assert b["min_success_rps"] == 2.0 and b["threshold_rps"] == 5.0
    assert s["failures"] == 0
    strict = summarize(mk(reqs, [(10, "fault")], end=30), brownout_ratio=0.1)
    assert strict["brownout"] is None


def test_failures_count_as_brownout_and_timeline_has_every_second() -> None:
    reqs = steady(0, 5) + steady(5, 7, ok=False, err="connect_refused") + steady(7, 10)
    s = summarize(mk(reqs, [(5, "fault")], end=10))
    assert s["brownout"]["duration_s"] == 2.0
    tl = s["timeline"]
    assert [row["second"] for row in tl] == list(range(11))
    assert tl[5] == {"second": 5, "successes": 0, "failures": 10, "p50": None, "p99": None}
    assert tl[0]["successes"] == 10 and tl[0]["p50"] == 10.0
    assert tl[10]["successes"] == 0 and tl[10]["failures"] == 0


def test_failures_by_endpoint_and_per_endpoint_statistics() -> None:
    reqs = [
        req(0, ep="w1"),
        req(0.1, ep="w2"),
        req(0.2, ok=False, ep="w2", err="http_500"),
        req(0.3, ok=False, err="disconnected"),
    ]
    s = summarize(mk(reqs, end=1))
    assert s["failures_by_endpoint"] == {"w2": 1, "-": 1}
    assert s["by_endpoint"]["w2"]["requests"] == 2
    assert s["by_endpoint"]["w2"]["success_rate"] == 0.5
    assert s["by_endpoint"]["w1"]["latency_ms"]["p50"] == 10.0


def test_each_endpoint_has_its_own_failure_windows() -> None:
    # One stream per endpoint: w2 fails from 1 s to 4 s while w1 keeps succeeding, which
    # cuts the run's windows into pieces but not w2's own.
    reqs = []
    for i in range(50):
        t = i * 0.1
        reqs.append(req(t, ep="w1"))
        reqs.append(req(t + 0.05, ok=not 1 <= t < 4, ep="w2", err="connect_refused"))
    s = summarize(mk(reqs, end=5))

    w2 = s["by_endpoint"]["w2"]
    assert w2["failure_windows"] == 1
    assert w2["longest_failure_window"]["offset_s"] == pytest.approx(1.05)
    assert w2["longest_failure_window"]["duration_s"] == pytest.approx(3.0)
    assert s["by_endpoint"]["w1"]["longest_failure_window"] is None
    assert s["by_endpoint"]["w1"]["failure_windows"] == 0
    assert s["longest_failure_window"]["duration_s"] < 0.1  # the merged view is cut up


def test_rate_check_reports_kept_up_and_falling_behind() -> None:
    ok = mk(steady(0, 10, per_s=100), end=10, mode="rate", rate=100.0)
    ok.end["schedule"] = {"skipped": 0, "late": 0, "max_late_ms": 1.0}  # type: ignore[index]
    rc = summarize(ok)["rate_check"]
    assert rc["kept_up"] is True and rc["achieved_rps"] == pytest.approx(100.0)
    slow = mk(steady(0, 10, per_s=80), end=10, mode="rate", rate=100.0)
    slow.end["schedule"] = {"skipped": 5, "late": 300, "max_late_ms": 900.0}  # type: ignore[index]
    rc = summarize(slow)["rate_check"]
    assert rc["kept_up"] is False and rc["skipped"] == 5
    assert summarize(mk(steady(0, 1)))["rate_check"] is None


def test_summary_is_json_serializable_for_a_busy_run() -> None:
    reqs = steady(0, 30, ok=True) + steady(30, 31, ok=False, err="other:ValueError")
    s = summarize(
        mk(reqs, [(10, "fault"), (11, "pod_ready"), (12, "applications_running")], end=31)
    )
    assert json.loads(json.dumps(s))["requests"] == 310


def test_failed_requests_are_listed_even_from_sparse_records(tmp_path: Path) -> None:
    from chaosraysvc.traffic.log import read_traffic_log

    path = tmp_path / "sparse.jsonl"
    lines = [
        {"kind": "run", "version": 1, "started": 100.0},
        {"kind": "req", "t": 100.5, "ok": True, "ms": 3.0, "code": 200, "err": None},
        {"kind": "mark", "t": 101.0, "event": "fault", "detail": {}},
        {"kind": "req", "t": 101.25, "ok": False, "ms": 2.0, "err": "timeout"},  # no code
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))

    [failed] = summarize(read_traffic_log(path))["failed_requests"]

    assert failed == {
        "t": 101.25,
        "offset_s": 1.25,
        "after_fault_s": 0.25,
        "err": "timeout",
        "code": None,
        "ep": None,
        "ms": 2.0,
        "id": None,
    }


def test_a_fault_whose_action_was_refused_starts_no_outage() -> None:
    # kill_gcs_server marks the fault, then the target refuses: nothing happened to the service.
    s = summarize(mk(steady(0, 20), [(5, "fault"), (5.01, "fault_not_injected")], end=20))
    assert s["phases"]["outage"] is None
    assert s["phases"]["baseline"]["duration_s"] == 20.0
    assert s["failures_after_fault"] is None


def test_a_refused_fault_then_an_injected_one_counts_from_the_injected_one() -> None:
    marks = [(5, "fault"), (5.01, "fault_not_injected"), (9, "fault")]
    s = summarize(mk(steady(0, 20), marks, end=20))
    assert s["phases"]["baseline"]["duration_s"] == 9.0
    assert s["phases"]["outage"]["duration_s"] == 11.0


def test_failure_time_does_not_grow_with_the_speed_of_refusals() -> None:
    # The Service dies at +10 s for 5 s: refusals come back at 170/s, timeouts at 0.5/s.
    marks = [(10, "fault"), (15, "pod_ready"), (16, "endpoints_restored")]
    fast = steady(0, 10) + steady(10, 15, per_s=170, ok=False, err="connect_refused", ms=1.0)
    slow = steady(0, 10) + steady(10, 15, per_s=2, ok=False, err="timeout", ms=2000.0)
    fast_s = summarize(mk(fast + steady(15, 30), marks, end=30))
    slow_s = summarize(mk(slow + steady(15, 30), marks, end=30))

    assert (fast_s["failures"], slow_s["failures"]) == (850, 10)
    for s in (fast_s, slow_s):
        ft = s["failure_time"]
        assert (ft["seconds"], ft["spans"]) == (5.0, 1)
        assert (ft["first_offset_s"], ft["last_offset_s"]) == (10.0, 15.0)
        assert ft["before_fault_rps"] == 10.0
    fast_t = fast_s["failure_time"]
    assert (fast_t["requests"], fast_t["failures"]) == (850, 850)
    assert fast_t["requests_rps"] == fast_t["failures_rps"] == 170.0
    assert slow_s["failure_time"]["requests_rps"] == 2.0


def test_failure_time_is_the_union_of_seconds_with_a_failure() -> None:
    # Two bursts: one lone failure at +2.5 s, then +6.2 to +8.3 s; successes in between.
    reqs = steady(0, 10)
    for i, r in enumerate(reqs):  # 10 a second: request i starts at +i/10 s
        if i == 25 or 62 <= i < 84:
            r.update(ok=False, code=None, err="http_503")
    ft = summarize(mk(reqs, end=10))["failure_time"]
    # seconds 2, 6, 7 and 8 each hold a failure
    assert (ft["seconds"], ft["spans"]) == (4.0, 2)
    assert (ft["first_offset_s"], ft["last_offset_s"]) == (2.0, 9.0)
    assert (ft["requests"], ft["failures"]) == (40, 23)
    assert ft["requests_rps"] == 10.0 and ft["failures_rps"] == 5.75
    assert ft["before_fault_rps"] is None  # no fault: nothing to compare with


def test_failure_time_cuts_the_last_second_at_the_end_of_the_run() -> None:
    reqs = steady(0, 5) + steady(5, 5.5, per_s=100, ok=False, err="connect_refused", ms=1.0)
    ft = summarize(mk(reqs, [(5, "fault")], end=5.5))["failure_time"]
    assert ft["seconds"] == 0.5 and ft["last_offset_s"] == 5.5
    assert ft["requests_rps"] == 100.0 and ft["before_fault_rps"] == 10.0


def test_no_failure_has_no_failure_time() -> None:
    assert summarize(mk(steady(0, 10), [(5, "fault")], end=10))["failure_time"] is None
    assert summarize(TrafficLog(path=Path("e.jsonl")))["failure_time"] is None
