"""A traffic log that holds fewer requests than the journal counted never passes (issue 25, 6).

The real `make demo` run (tests/fixtures/reports/demo-pass) passed with 2,150 requests, 0
failed, as its journal counts; its traffic log beside it is trimmed to 342 requests (3 s
after the fault). The report used to say PASSED and "Serve answered all 342 requests". Cut
at a byte count, as an artifact upload limit does, the last line is cut too.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from chaosraysvc.report.cli import build
from chaosraysvc.report.figures import run_figures
from chaosraysvc.report.load import load_run
from tests.support.report_samples import FIXTURES, figures_of, passing_journal, traffic_records

DEMO = "demo-pass-journal"


def demo_run(folder: Path, cut_at: int | None = None) -> Path:
    """Copy the demo run into `folder`, its log cut at `cut_at` bytes when given."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / f"{DEMO}.json", folder / "journal.json")
    log = (FIXTURES / f"{DEMO}-traffic.jsonl").read_bytes()
    (folder / "journal-traffic.jsonl").write_bytes(log if cut_at is None else log[:cut_at])
    return folder / "journal.json"


def test_a_trimmed_log_beside_the_journal_is_inconclusive_and_says_so(tmp_path: Path) -> None:
    f = run_figures(load_run(demo_run(tmp_path))).to_json()
    v = f["verdict"]
    gap = (
        f"the traffic log {tmp_path / 'journal-traffic.jsonl'} holds 342 requests (0 failed) "
        "but the journal counted 2,150 (0 failed) for this run"
    )
    assert (v["outcome"], v["label"]) == ("inconclusive", "Inconclusive")
    assert v["reason"].startswith(f"the evidence is incomplete: {gap}")
    facts = " ".join(v["facts"])
    assert "Serve answered all" not in facts
    assert "The traffic log holds 342 requests, 0 failed, but it is incomplete" in facts
    assert any(w.startswith(gap) for w in f["warnings"])
    assert f["trend"]["verdict"] == "Inconclusive"


def test_a_log_cut_mid_line_is_inconclusive_in_every_format(tmp_path: Path) -> None:
    path = demo_run(tmp_path, cut_at=20_000)
    for fmt in ("md", "html"):
        files, warnings = build([path], None, tmp_path / f"r.{fmt}", fmt)
        text = files[tmp_path / f"r.{fmt}"].decode()
        assert "Passed" not in text and "PASSED" not in text
        assert "INCONCLUSIVE" in text or "Inconclusive" in text
        assert any("the journal counted 2,150 (0 failed)" in w for w in warnings)
    # a journal that counted nothing (no traffic control, no stop_traffic): the cut line tells
    journal = json.loads(path.read_text())
    del journal["extensions"], journal["rollbacks"]
    path.write_text(json.dumps(journal))
    v = run_figures(load_run(path)).to_json()["verdict"]
    assert v["outcome"] == "inconclusive"
    assert "ends with a cut-off line although the run ended and wrote its journal" in v["reason"]


def test_the_same_journal_passes_from_its_own_count_or_a_whole_log(tmp_path: Path) -> None:
    """Without the trimmed log the figures come from the journal's own count: a pass; a
    log that agrees with its journal passes; the same log missing its 50 failed lines (the
    journal counted 800 requests, 50 failed) is no pass."""
    folder = tmp_path / "alone"
    folder.mkdir()
    shutil.copy(FIXTURES / f"{DEMO}.json", folder / "journal.json")
    f = run_figures(load_run(folder / "journal.json")).to_json()
    assert f["verdict"]["outcome"] == "passed" and f["figures_from"] == "journal"
    assert "Serve answered all 2,150 requests (0 failed)." in f["verdict"]["facts"]

    f = figures_of(tmp_path / "whole", passing_journal(), traffic_records()).to_json()
    assert f["verdict"]["outcome"] == "passed"
    assert not [w for w in f["warnings"] if "journal counted" in w]

    records = [r for r in traffic_records() if r.get("ok") is not False]
    v = figures_of(tmp_path / "short", passing_journal(), records).to_json()["verdict"]
    assert v["outcome"] == "inconclusive"
    assert "holds 750 requests (0 failed) but the journal counted 800 (50 failed)" in v["reason"]


def test_a_deviated_run_with_a_trimmed_log_stays_deviated_and_says_the_log_is_short(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "run1"
    folder.mkdir()
    for suffix in (".json", "-traffic.jsonl"):
        shutil.copy(FIXTURES / f"run1-journal{suffix}", folder / f"journal{suffix}")
    f = run_figures(load_run(folder / "journal.json")).to_json()
    assert f["verdict"]["outcome"] == "deviated"
    assert any(
        "but the journal counted 13,175 (0 failed)" in fact for fact in f["verdict"]["facts"]
    )
    json.dumps(f)
