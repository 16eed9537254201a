"""Failure time in a report: how long requests failed and how fast, beside the count.

Issue 25 item 5: once the Service died, the traffic sent ~170 refused requests a second,
so the count of failed requests measured the loop's speed. A report shows the seconds
with failures and the request rate in them against the rate before the fault, and still
renders journals summarized before the failure time existed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chaosraysvc.report.cli import build
from chaosraysvc.report.values import short_value
from tests.support.report_samples import (
    FIXTURES,
    T0,
    figures_of,
    passing_journal,
    traffic_records,
    write_run,
)


def refusing_records() -> list[dict[str, Any]]:
    """Return a 30 s log at 10 requests/s whose Service refuses at 170/s from +10 s to +15 s."""
    base = traffic_records(duration=30.0, rate=10.0)
    records = [r for r in base if r["kind"] != "req" or not 10.0 <= r["t"] - T0 < 15.0]
    for r in records:
        if r["kind"] == "req":
            r.update(ok=True, code=200, err=None, ms=20.0)
    refused = [
        {
            "kind": "req",
            "t": T0 + 10.0 + i / 170.0,
            "ms": 1.0,
            "ok": False,
            "code": None,
            "err": "connect_refused",
            "ep": "worker-1",
            "id": f"crs-refused-{i}",
        }
        for i in range(5 * 170)
    ]
    return sorted(records + refused, key=lambda r: (r["kind"] != "run", r.get("t", 0.0)))


def refusing_journal() -> dict[str, Any]:
    """Return the passing journal with the counts of `refusing_records` recorded."""
    journal = passing_journal()
    for result in journal["run"]:
        if isinstance(result.get("output"), dict) and "failures" in result["output"]:
            result["output"].update(requests=1_100, failures=850)
    journal["extensions"][0]["traffic"]["summary"].update(requests=1_100, failures=850)
    return journal


def report(folder: Path, journal: dict[str, Any], records: list | None, fmt: str) -> str:
    path = write_run(folder, journal, records)
    files, _ = build([path], None, folder / f"r.{fmt}", fmt)
    return files[folder / f"r.{fmt}"].decode()


def test_figures_give_the_failure_time_and_the_rates(tmp_path: Path) -> None:
    f = figures_of(tmp_path, refusing_journal(), refusing_records()).to_json()
    t = f["traffic"]
    assert t["failures"] == 850
    ft = t["failure_time"]
    assert (ft["seconds"], ft["requests_rps"], ft["before_fault_rps"]) == (5.0, 170.0, 10.0)
    assert f["trend"]["failure_time_s"] == 5.0
    facts = " ".join(f["verdict"]["facts"])
    assert (
        "850 of 1,100 requests failed (77.27 %) over 5.0 s with failures "
        "(170.0 requests/s in those seconds, 10.0/s before the fault)" in facts
    )


def test_html_and_markdown_show_the_failure_time_beside_the_count(tmp_path: Path) -> None:
    html = report(tmp_path / "h", refusing_journal(), refusing_records(), "html")
    card = html[html.index('<div class="label">failing for</div>') :][:400]
    assert "5.0 s" in card and "170.0/s sent then, 10.0/s before the fault" in card
    md = report(tmp_path / "m", refusing_journal(), refusing_records(), "md")
    assert (
        "**850 failed** (success 22.73 %) over **5.0 s with failures** "
        "(170.0/s sent in those seconds, 10.0/s before the fault)" in md
    )


def test_the_trend_has_a_failing_for_column(tmp_path: Path) -> None:
    journals = [
        write_run(tmp_path / "fast", refusing_journal(), refusing_records()),
        write_run(tmp_path / "slow", records=traffic_records()),
    ]
    files, _ = build(journals, None, tmp_path / "t.md", "md")
    md = files[tmp_path / "t.md"].decode()
    assert "| requests | failed | failing for | failure window | recovery |" in md
    rows = json.loads(build(journals, None, tmp_path / "t.json", "json")[0][tmp_path / "t.json"])
    assert [r["failure_time_s"] for r in rows["trend"]] == [5.0, 3.0]


def test_a_journal_summarized_before_the_failure_time_still_renders(tmp_path: Path) -> None:
    # No traffic log beside it: the journal's summary (failures, no failure_time) is used.
    f = figures_of(tmp_path / "f", passing_journal()).to_json()
    assert f["figures_from"] == "journal" and f["traffic"]["failure_time"] is None
    assert f["trend"]["failure_time_s"] is None
    assert "50 of 800 requests failed (6.25 %)." in " ".join(f["verdict"]["facts"])
    html = report(tmp_path / "h", passing_journal(), None, "html")
    assert "not in this summary" in html
    md = report(tmp_path / "m", passing_journal(), None, "md")
    assert "**50 failed** (success —), longest failure window" in md
    for fmt in ("html", "md", "json"):  # a real journal of an older version
        files, _ = build([FIXTURES / "run1-journal.json"], None, tmp_path / f"o.{fmt}", fmt)
        assert files[tmp_path / f"o.{fmt}"]


def test_a_traffic_summary_result_reads_with_its_failure_time() -> None:
    output = {
        "requests": 1_100,
        "failures": 850,
        "failure_time": {"seconds": 5.0, "requests_rps": 170.0},
        "latency_ms": {"p99": 20.0},
    }
    assert short_value(output) == "1,100 requests, 850 failed over 5.0 s, p99 20.0 ms"
    del output["failure_time"]  # as an older journal recorded it
    assert short_value(output) == "1,100 requests, 850 failed, p99 20.0 ms"
