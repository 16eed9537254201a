"""Rendered reports: self-contained HTML, escaping, the chart's marks, Markdown and JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chaosraysvc.report.cli import build
from tests.support.report_samples import (
    FIXTURES,
    SECRET,
    passing_journal,
    real_runs,
    traffic_records,
    write_run,
)

EVIL = "<script>alert('x')</script>"
EVIL_POD = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def passing_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("passing")
    journal = write_run(folder, records=traffic_records())
    files, _ = build([journal], None, folder / "report.html", "html")
    return files[folder / "report.html"].decode()


@pytest.fixture(scope="module")
def evil_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """HTML and Markdown of a journal whose every text field tries to inject markup."""
    folder = tmp_path_factory.mktemp("evil")
    journal = passing_journal(pod=EVIL_POD)
    journal["experiment"]["title"] = EVIL
    journal["experiment"]["tags"] = [EVIL]
    journal["status"] = "failed"
    journal["run"][0].update(status="failed", exception=[f"ValueError: {EVIL} | `x` *y*\n"])
    journal["steady_states"]["after"]["probes"][0]["output"] = EVIL
    path = write_run(folder, journal, traffic_records(pod=EVIL_POD))
    html, _ = build([path], None, folder / "r.html", "html")
    md, _ = build([path], None, folder / "r.md", "md")
    return {"html": html[folder / "r.html"].decode(), "md": md[folder / "r.md"].decode()}


def test_html_puts_the_verdict_first_and_holds_every_part(passing_html: str) -> None:
    body = passing_html[passing_html.index("<body>") :]
    order = [
        "PASSED",
        "What was run against what",
        "Traffic timeline",
        "<svg",
        "Recovery",
        "Steady-state hypothesis",
        "Activities",
    ]
    positions = [body.index(marker) for marker in order]
    assert positions == sorted(positions)
    for text in ("rayservice-ha-head-abcde", "rayservice-ha-head-fghij", "12.0 s", "http_503"):
        assert text in body
    assert "@media print" in passing_html


def test_html_is_self_contained(passing_html: str) -> None:
    assert "<script" not in passing_html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", passing_html)
    assert "@import" not in passing_html
    assert not re.search(r"url\((?!#)", passing_html)  # only in-page references
    assert "<link" not in passing_html and "<iframe" not in passing_html


def test_the_chart_marks_the_fault_and_every_milestone(passing_html: str) -> None:
    svg = passing_html[passing_html.index("<svg") : passing_html.index("</svg>")]
    for label in (
        "head pod deleted (+10.0 s)",
        "new head pod ready (+15.0 s)",
        "endpoints restored (+20.0 s)",
        "applications RUNNING (+22.0 s)",
        "failed requests / s",
        "latency p99",
        "longest failure window (2.5 s)",
    ):
        assert label in svg, label


def test_journal_text_is_escaped_in_html(evil_reports: dict[str, str]) -> None:
    html = evil_reports["html"]
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # in tables and in the chart's SVG


def test_journal_text_is_escaped_in_markdown(evil_reports: dict[str, str]) -> None:
    md = evil_reports["md"]
    assert "<script" not in md and "<img" not in md
    assert "&lt;script&gt;" in md
    assert "\\| \\`x\\` \\*y\\*" in md  # no broken table, no stray code or emphasis


def test_secrets_never_reach_a_report(passing_html: str, evil_reports: dict[str, str]) -> None:
    for text in (passing_html, *evil_reports.values()):
        assert SECRET not in text and "redis_password" not in text


def test_markdown_links_its_chart_png(tmp_path: Path) -> None:
    journal = write_run(tmp_path, records=traffic_records())
    files, _ = build([journal], None, tmp_path / "out.md", "md")
    png = tmp_path / "out-timeline.png"
    assert list(files) == [tmp_path / "out.md", png]
    assert files[png].startswith(b"\x89PNG\r\n\x1a\n") and len(files[png]) > 10_000
    md = files[tmp_path / "out.md"].decode()
    assert "](out-timeline.png)" in md
    assert "| head pod rayservice-ha-head-abcde → rayservice-ha-head-fghij | +10.0 s" in md


def test_json_holds_the_figures_for_machines(tmp_path: Path) -> None:
    files, _ = build([FIXTURES / "run2-journal.json"], None, tmp_path / "r.json", "json")
    doc = json.loads(files[tmp_path / "r.json"])
    assert doc["format"] == "chaosraysvc-report" and doc["version"] == 1
    [run] = doc["runs"]
    assert run["verdict"]["outcome"] == "deviated"
    assert run["faults"][0]["recovered"] is False
    assert doc["trend"] == [run["trend"]]


def test_several_journals_give_a_trend_in_date_order(tmp_path: Path) -> None:
    journals = [FIXTURES / "run2-journal.json", FIXTURES / "run1-journal.json"]
    journals.append(write_run(tmp_path / "pass", records=traffic_records()))
    files, _ = build(journals, None, tmp_path / "t.json", "json")
    rows = json.loads(files[tmp_path / "t.json"])["trend"]
    assert [r["date"][:16] for r in rows] == [
        "2026-11-26 00:25",
        "2026-11-26 00:40",
        "2027-01-15 07:59",
    ]
    assert [r["outcome"] for r in rows] == ["deviated", "deviated", "passed"]
    assert rows[2]["recovery_s"] == 12.0 and rows[2]["failures"] == 50


def test_a_report_without_traffic_says_so(tmp_path: Path) -> None:
    journal = passing_journal()
    del journal["extensions"]
    files, warnings = build([write_run(tmp_path, journal)], None, tmp_path / "r.html", "html")
    html = files[tmp_path / "r.html"].decode()
    assert "No traffic was recorded with this run." in html and "<svg" not in html
    assert any("no traffic was recorded" in w for w in warnings)


@pytest.mark.parametrize("journal", real_runs(), ids=lambda p: p.stem)
def test_every_real_run_renders_in_every_format(journal: Path, tmp_path: Path) -> None:
    recorded = json.loads(journal.read_text())
    docs = {}
    for fmt in ("json", "md", "html"):
        files, _ = build([journal], None, tmp_path / f"r.{fmt}", fmt)
        docs[fmt] = files[tmp_path / f"r.{fmt}"].decode()
    [run] = json.loads(docs["json"])["runs"]
    assert run["verdict"]["deviated"] is bool(recorded.get("deviated"))
    # the fixtures' logs are trimmed around the fault: a run that did not deviate is no pass
    expected = "deviated" if recorded.get("deviated") else "inconclusive"
    assert run["verdict"]["outcome"] == expected
    label = run["verdict"]["label"]
    assert label.upper() in docs["html"] and label.upper() in docs["md"]
    for fault in run["faults"]:
        assert fault["pod"] in docs["html"] and fault["pod"] in docs["md"]
