"""Runs killed before their journal was written: reported from the traffic log alone.

The fixtures are derived from the real `make demo` run in tests/fixtures/reports: its
traffic log without the end line and with its last line cut mid-write, as a `kill -9`
of `chaos run` leaves it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chaosraysvc.report.cli import build
from chaosraysvc.report.figures import run_figures
from chaosraysvc.report.load import ReportInputError, load_path
from chaosraysvc.report.verdict import NO_JOURNAL_STATUS
from tests.support.report_samples import FIXTURES, T0, traffic_records, write_run

DEMO_LOG = FIXTURES / "demo-pass-journal-traffic.jsonl"


def killed_run(folder: Path, cut: bool = True) -> Path:
    """Write the demo run's traffic log as a kill -9 leaves it; return the log's path.

    Returns the log with no end line and, with `cut`, a last request line cut in half.
    """
    folder.mkdir(parents=True, exist_ok=True)
    lines = [line for line in DEMO_LOG.read_text().splitlines() if '"kind":"end"' not in line]
    log = folder / "journal-traffic.jsonl"
    text = "\n".join(lines) + "\n"
    if cut:
        text += lines[-1][: len(lines[-1]) // 2]
    log.write_text(text)
    return log


def complete_requests(log: Path) -> int:
    complete = log.read_text().splitlines()[:-1]  # the last line was cut
    return sum(1 for line in complete if json.loads(line).get("kind") == "req")


def test_a_folder_without_journal_is_reported_from_its_traffic_log(tmp_path: Path) -> None:
    log = killed_run(tmp_path)
    run = load_path(tmp_path)
    assert run.journal_path is None and run.traffic_path == log
    assert run.missing_journal == tmp_path / "journal.json"
    assert run.traffic is not None and run.traffic.truncated and run.traffic.end is None
    assert run.summary is not None and run.summary["requests"] == complete_requests(log)
    assert any("does not exist" in w and "traffic log alone" in w for w in run.warnings)
    assert any("cut-off line" in w for w in run.warnings)

    f = run_figures(run).to_json()
    v = f["verdict"]
    assert (v["outcome"], v["label"], v["status"]) == (
        "interrupted",
        "Interrupted",
        NO_JOURNAL_STATUS,
    )
    assert v["steady_state_before"] is None and v["steady_state_after"] is None
    assert not any(fact.startswith("Steady state before") for fact in v["facts"])
    assert any("verdict is unknown" in fact for fact in v["facts"])
    assert f["unknown"] and any("no verdict is claimed" in u for u in f["unknown"])
    [fault] = f["faults"]  # from the traffic log's fault mark
    assert fault["pod"] == "rayservice-ha-raycluster-dcc68-head-vmmc0" and fault["role"] == "head"
    assert fault["recovered"] is None and fault["cut_off"] is True
    assert fault["log_end_after_s"] == pytest.approx(3.0, abs=0.1)
    assert any("whether and when it recovered is unknown" in fact for fact in v["facts"])


def test_the_traffic_log_path_itself_is_accepted(tmp_path: Path) -> None:
    log = killed_run(tmp_path, cut=False)
    run = load_path(log)
    assert run.interrupted and run.traffic_path == log and run.journal_path is None
    assert not any("cut-off" in w for w in run.warnings)
    assert any("no end line" in w for w in run.warnings)


@pytest.mark.parametrize(
    ("journal", "what"),
    [(None, "does not exist"), (b"", "is empty"), (b'{"chaoslib-version": "1.4', "not valid JSON")],
)
def test_a_journal_that_was_not_written_falls_back_to_the_traffic_log(
    tmp_path: Path, journal: bytes | None, what: str
) -> None:
    """`make demo` reports runs/<ts>/journal.json even when the run was killed."""
    killed_run(tmp_path)
    path = tmp_path / "journal.json"
    if journal is not None:
        path.write_bytes(journal)
    run = load_path(path)
    assert run.journal_path is None and run.missing_journal == path
    assert what in run.interrupted
    assert run_figures(run).to_json()["verdict"]["status"] == NO_JOURNAL_STATUS


def test_a_journal_not_written_and_no_traffic_log_is_still_an_error(tmp_path: Path) -> None:
    (tmp_path / "journal.json").write_bytes(b"")
    with pytest.raises(ReportInputError, match="is empty"):
        load_path(tmp_path / "journal.json")
    with pytest.raises(ReportInputError, match="does not exist"):
        load_path(tmp_path / "nope.json")


def test_an_empty_folder_or_an_empty_log_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ReportInputError, match="holds no journal"):
        load_path(tmp_path)
    (tmp_path / "journal-traffic.jsonl").write_text("")
    with pytest.raises(ReportInputError, match="nothing of this run survived"):
        load_path(tmp_path)


def test_a_journal_without_its_traffic_log_is_reported_from_the_journal(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "run1-journal.json", tmp_path / "journal.json")
    run = load_path(tmp_path)
    assert run.journal_path == tmp_path / "journal.json" and not run.interrupted
    assert run.summary_source == "journal"
    assert any("traffic log not found" in w for w in run.warnings)
    assert run_figures(run).to_json()["verdict"]["outcome"] == "deviated"


def test_a_log_of_another_run_beside_the_journal_is_named_as_such(tmp_path: Path) -> None:
    records = traffic_records()
    records[0]["started"] = T0 - 3600
    run = load_path(write_run(tmp_path, records=records))
    assert run.traffic is None
    assert any("belongs to another run" in w for w in run.warnings)


def test_html_and_markdown_of_an_interrupted_run_claim_no_verdict(tmp_path: Path) -> None:
    killed_run(tmp_path)
    html = build([tmp_path], None, tmp_path / "r.html", "html")[0][tmp_path / "r.html"].decode()
    files, warnings = build([tmp_path], None, tmp_path / "r.md", "md")
    md = files[tmp_path / "r.md"].decode()
    assert tmp_path / "r-timeline.png" in files  # the chart is drawn from the log
    for text in (html, md):
        assert "INTERRUPTED" in text and NO_JOURNAL_STATUS in text
        assert "PASSED" not in text and "DEVIATED" not in text
        assert "no hypothesis verdict" in text and "Unknown" in text
        assert "rayservice-ha-raycluster-dcc68-head-vmmc0" in text
    assert "not by the log's end" in html.replace("&#39;", "'") and "not by the log's end" in md
    assert 'journal <span class="bad">not written</span>' in html
    assert "<svg" in html
    assert any("traffic log alone" in w for w in warnings)


def test_the_cli_reports_a_killed_run_folder(tmp_path: Path) -> None:
    """The command as a user runs it after `kill -9` of `chaos run`."""
    killed_run(tmp_path / "run")
    cmd = [sys.executable, "-m", "chaosraysvc.cli", "report", str(tmp_path / "run")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "run" / "report.html")
    warnings = done.stderr.strip().splitlines()
    assert all(w.startswith("chaosraysvc: warning: ") for w in warnings) and len(warnings) == 2
    assert "Traceback" not in done.stderr
    html = (tmp_path / "run" / "report.html").read_text()
    assert "INTERRUPTED" in html and NO_JOURNAL_STATUS in html

    out = tmp_path / "r.json"
    cmd = [*cmd[:-1], str(tmp_path / "run" / "journal-traffic.jsonl"), "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    [figures] = json.loads(out.read_text())["runs"]
    assert figures["journal"] is None and figures["interrupted"]
    assert figures["verdict"]["outcome"] == "interrupted"
