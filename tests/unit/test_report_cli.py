"""`chaosraysvc report` as a user runs it: paths, formats, exit codes and messages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chaosraysvc.cli import main
from tests.support.report_samples import FIXTURES, passing_journal, traffic_records, write_run


def copy_real(name: str, folder: Path) -> Path:
    for suffix in ("-journal.json", "-journal-traffic.jsonl"):
        shutil.copy(FIXTURES / f"{name}{suffix}", folder / f"{name}{suffix}")
    return folder / f"{name}-journal.json"


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("chaosraysvc: error: ") and "Traceback" not in err
    return lines[0]


def test_report_writes_html_beside_the_journal_and_prints_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = copy_real("run1", tmp_path)
    assert main(["report", str(journal)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(tmp_path / "report.html")
    # the fixture's log is trimmed around the fault: one warning, that it is incomplete
    [warning] = err.splitlines()
    assert warning.startswith("chaosraysvc: warning: ") and "journal counted 13,175" in warning
    html = (tmp_path / "report.html").read_text()
    assert "DEVIATED" in html and "<svg" in html


def test_the_format_follows_the_output_suffix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = copy_real("run2", tmp_path)
    assert main(["report", str(journal), "-o", str(tmp_path / "ticket.md")]) == 0
    assert capsys.readouterr().out.split() == [
        str(tmp_path / "ticket.md"),
        str(tmp_path / "ticket-timeline.png"),
    ]
    assert main(["report", str(journal), "--format", "json"]) == 0
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["runs"][0]["verdict"]["outcome"] == "deviated"


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"", "is empty"), (b'{"status": "compl', "is not valid JSON"), (b"{}", "no 'experiment'")],
)
def test_an_unusable_journal_exits_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, expected: str
) -> None:
    path = tmp_path / "journal.json"
    path.write_bytes(content)
    assert main(["report", str(path)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert str(path) in line and expected in line
    assert not (tmp_path / "report.html").exists()


def test_a_cut_traffic_log_still_gives_a_report_and_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = write_run(tmp_path, records=traffic_records())
    log = tmp_path / "journal-traffic.jsonl"
    log.write_bytes(log.read_bytes()[:-30])
    assert main(["report", str(journal)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(tmp_path / "report.html")
    assert err.startswith("chaosraysvc: warning: ") and "cut-off line" in err
    assert "cut-off line" in (tmp_path / "report.html").read_text()


def test_usage_errors_exit_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_run(tmp_path / "a", records=traffic_records())
    b = write_run(tmp_path / "b", records=traffic_records())
    assert main(["report", str(a), str(b), "--traffic", str(a)]) == 1
    assert "several were given" in one_error_line(capsys.readouterr().err)
    assert main(["report", str(a), "--traffic", str(tmp_path / "nope.jsonl")]) == 1
    assert "nope.jsonl does not exist" in one_error_line(capsys.readouterr().err)
    assert main(["report", str(a), "-o", str(tmp_path / "missing-dir" / "r.html")]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "cannot write the report to" in line and "-o" in line


def test_several_journals_write_a_trend_report_in_their_common_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journals = []
    for name in ("run1", "run2"):
        (tmp_path / name).mkdir()
        journals.append(copy_real(name, tmp_path / name))
    journals.append(write_run(tmp_path / "ok", passing_journal(), traffic_records()))
    assert main(["report", *map(str, journals)]) == 0
    out = capsys.readouterr().out.strip()
    assert out == str(tmp_path.resolve() / "trend-report.html")
    html = Path(out).read_text()
    assert "Trend of 3 runs" in html and html.count('<article class="run"') == 3
    assert html.count("<svg") == 3
    rows = html[html.index("<tbody>") : html.index("</tbody>")]
    assert rows.index("Deviated") < rows.index("Passed")


def test_a_bug_still_ends_in_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise KeyError("surprise\nacross lines")

    monkeypatch.setattr("chaosraysvc.report.cli.run_figures", broken)
    journal = write_run(tmp_path, records=traffic_records())
    assert main(["report", str(journal)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert str(journal) in line and "KeyError" in line and "--debug" in line
    with pytest.raises(KeyError):
        main(["report", str(journal), "--debug"])
