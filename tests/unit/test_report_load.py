"""Reading journals and traffic logs for reports: real runs, damaged and missing files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chaosraysvc.report.load import ReportInputError, load_run
from tests.support.report_samples import (
    FIXTURES,
    T0,
    passing_journal,
    real_runs,
    traffic_records,
    write_run,
)


def test_real_runs_load_with_the_traffic_log_beside_them() -> None:
    assert len(real_runs()) >= 2
    for journal in real_runs():
        run = load_run(journal)
        beside = journal.with_name(f"{journal.stem}-traffic.jsonl")
        if not beside.exists():  # a journal dropped here without its log
            assert run.summary_source in ("journal", "")
            continue
        assert run.traffic_path == beside
        assert run.summary_source == "traffic log"
        assert run.summary is not None and run.summary["requests"] > 100
        assert run.summary["timeline"], "the chart needs the per-second timeline"
        # the fixtures' logs are trimmed around the fault (trim_real_run.py): incomplete
        [gap] = run.evidence
        assert run.warnings == [gap] and "but the journal counted" in gap


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is empty"),
        (b"   \n", "is empty"),
        (b'{"status": "completed", "run": [', "is not valid JSON (line 1"),
        (b"[1, 2]", "holds a JSON list"),
        (b'{"title": "t", "method": []}', "looks like a Chaos Toolkit experiment"),
        (b'{"hello": "world"}', "looks like another JSON file"),
        (b"\xff\xfe{}", "is not UTF-8"),
    ],
)
def test_an_unusable_journal_is_a_clear_error(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "journal.json"
    path.write_bytes(content)
    with pytest.raises(ReportInputError) as info:
        load_run(path)
    message = str(info.value)
    assert str(path) in message and expected in message
    assert "chaos run --journal-path" in message  # what to do
    assert "\n" not in message


def test_a_missing_journal_or_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReportInputError, match="does not exist"):
        load_run(tmp_path / "nope.json")
    with pytest.raises(ReportInputError, match="is a directory"):
        load_run(tmp_path)


def test_a_traffic_log_cut_mid_line_still_gives_figures_and_says_so(tmp_path: Path) -> None:
    journal = write_run(tmp_path, records=traffic_records())
    log = tmp_path / "journal-traffic.jsonl"
    lines = log.read_text().splitlines()[:-1]  # no end line: killed mid-run
    log.write_text("\n".join(lines) + "\n" + lines[-1][:25])
    run = load_run(journal)
    assert run.traffic is not None and run.traffic.truncated
    assert run.summary is not None and run.summary_source == "traffic log"
    assert any("cut-off line" in w for w in run.warnings)


def test_a_log_without_end_line_is_reported_as_not_stopped_cleanly(tmp_path: Path) -> None:
    journal = write_run(tmp_path, records=traffic_records()[:-1])
    assert any("no end line" in w for w in load_run(journal).warnings)


def test_a_damaged_log_falls_back_to_the_journal_summary(tmp_path: Path) -> None:
    journal = write_run(tmp_path, records=traffic_records())
    log = tmp_path / "journal-traffic.jsonl"
    lines = log.read_text().splitlines()
    lines[5] = "garbage <not json>"
    log.write_text("\n".join(lines) + "\n")
    run = load_run(journal)
    assert run.summary_source == "journal" and run.summary is not None
    assert run.summary["requests"] == 800
    assert any("line 6: not JSON" in w and "drawn without it" in w for w in run.warnings)


def test_without_traffic_log_the_journal_summary_is_used(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path))
    assert run.traffic is None and run.summary_source == "journal"
    assert any("traffic log not found" in w and "--traffic" in w for w in run.warnings)


def test_a_journal_without_any_traffic_still_loads(tmp_path: Path) -> None:
    journal = passing_journal()
    del journal["extensions"]
    run = load_run(write_run(tmp_path, journal))
    assert run.summary is None
    assert any("no traffic was recorded" in w for w in run.warnings)


def test_an_empty_traffic_log_is_a_warning(tmp_path: Path) -> None:
    journal = write_run(tmp_path)
    (tmp_path / "journal-traffic.jsonl").write_text("")
    run = load_run(journal)
    assert run.traffic is None and any("is empty" in w for w in run.warnings)


def test_the_recorded_log_path_is_used_when_nothing_lies_beside(tmp_path: Path) -> None:
    elsewhere = tmp_path / "logs" / "traffic.jsonl"
    elsewhere.parent.mkdir()
    elsewhere.write_text("".join(json.dumps(r) + "\n" for r in traffic_records()))
    journal = passing_journal()
    journal["extensions"][0]["traffic"]["log"] = str(elsewhere)
    run = load_run(write_run(tmp_path / "run", journal))
    assert run.traffic_path == elsewhere and run.warnings == []


def test_a_log_of_another_run_is_not_taken_for_this_one(tmp_path: Path) -> None:
    records = traffic_records()
    records[0]["started"] = T0 - 3600
    run = load_run(write_run(tmp_path, records=records))
    assert run.traffic is None and run.summary_source == "journal"


def test_an_explicit_traffic_log_must_be_usable(tmp_path: Path) -> None:
    journal = write_run(tmp_path)
    with pytest.raises(ReportInputError, match="does not exist"):
        load_run(journal, tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "req", "t": 1, "ok": true}\n')
    with pytest.raises(ReportInputError, match="no 'run' header"):
        load_run(journal, bad)


def test_an_explicit_traffic_log_is_used(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "run1-journal-traffic.jsonl", tmp_path / "t.jsonl")
    run = load_run(FIXTURES / "run1-journal.json", tmp_path / "t.jsonl")
    assert run.traffic_path == tmp_path / "t.jsonl"
    assert run.warnings == run.evidence  # only that the trimmed log is incomplete
    assert f"traffic log {tmp_path / 't.jsonl'} holds 275 requests" in run.evidence[0]
