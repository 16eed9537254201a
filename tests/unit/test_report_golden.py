"""The report's and the metrics' wire formats stay byte for byte what they were.

Goldens in tests/fixtures/golden/ were written before the run figures were typed (issue 24
item 3), from the recorded journals of tests/fixtures/reports/ and the synthetic runs of
tests/support/report_samples.py: the HTML, Markdown and JSON reports (the timeline chart:
its SVG inline, its PNG's SHA-256), the metrics text the metrics control writes, and the
journal as the metrics and verdict controls leave it. The report's clock, the report
tool's version and the versions "installed where the report was made" are fixed, so only
the figures vary.

To write them again on purpose: `CHAOSRAYSVC_WRITE_GOLDEN=1 .venv/bin/pytest
tests/unit/test_report_golden.py`, then read the diff.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from chaosraysvc.controls import metrics as metrics_control
from chaosraysvc.report import verdict_control
from chaosraysvc.report.cli import build
from tests.support.report_samples import (
    FIXTURES,
    passing_journal,
    traffic_records,
    write_run,
)

GOLDEN = FIXTURES.parent / "golden"
WRITE = os.environ.get("CHAOSRAYSVC_WRITE_GOLDEN") == "1"
REAL = ("run1", "run2", "demo-pass")


@pytest.fixture(autouse=True)
def _fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fix what varies from machine to machine: the clock and the installed versions."""
    monkeypatch.setattr("chaosraysvc.report.render._generated", lambda: "2027-01-15 09:00:00 UTC")
    monkeypatch.setattr("chaosraysvc.report.render.__version__", "0.0.golden")
    monkeypatch.setattr("chaosraysvc.report.figures.__version__", "0.0.golden")
    monkeypatch.setattr("chaosraysvc.report.figures._installed", lambda dist: f"{dist}-9.9")


def _compare(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if WRITE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    assert path.is_file(), f"no golden {path}: write it with CHAOSRAYSVC_WRITE_GOLDEN=1"
    expected = path.read_bytes()
    if data != expected:  # show the first difference, not megabytes
        at = next((i for i, (a, b) in enumerate(zip(data, expected, strict=False)) if a != b), None)
        at = min(len(data), len(expected)) if at is None else at
        got, want = data[max(0, at - 200) : at + 200], expected[max(0, at - 200) : at + 200]
        pytest.fail(f"{name} differs at byte {at}:\n got: {got!r}\nwant: {want!r}")


def _real(folder: Path, name: str, with_log: bool = True) -> Path:
    """Copy a recorded run into `folder` under relative names; return its journal's name."""
    shutil.copy(FIXTURES / f"{name}-journal.json", folder / f"{name}-journal.json")
    if with_log:
        shutil.copy(
            FIXTURES / f"{name}-journal-traffic.jsonl", folder / f"{name}-journal-traffic.jsonl"
        )
    return Path(f"{name}-journal.json")


def _failed_fault_journal() -> dict[str, Any]:
    journal = passing_journal()
    journal["run"][0].update(
        status="failed",
        output=None,
        exception=["chaoslib.exceptions.ActivityFailed: RecoveryTimeoutError: not in 30 s\n"],
    )
    return journal


def _synthetic(folder: Path, name: str) -> Path:
    """Write a synthetic run into `folder`; return its journal's (relative) name."""
    if name == "passing":
        write_run(folder, passing_journal(), traffic_records(), name=name)
    elif name == "failed-fault":
        write_run(folder, _failed_fault_journal(), traffic_records(), name=name)
    elif name == "interrupted":  # the traffic log alone: killed before its journal
        log = folder / f"{name}-traffic.jsonl"
        log.write_text("".join(json.dumps(r) + "\n" for r in traffic_records()[:-1]))
        return Path(log.name)
    return Path(f"{name}.json")


CASES = [*REAL, "run1-no-log", "passing", "failed-fault", "interrupted", "trend"]


def _journals(folder: Path, case: str) -> list[Path]:
    """Write the run(s) of `case` into `folder`; return what the report is asked for."""
    if case in REAL:
        return [_real(folder, case)]
    if case == "run1-no-log":
        return [_real(folder, "run1", with_log=False)]
    if case == "trend":
        return [_real(folder, n) for n in REAL] + [_synthetic(folder, "passing")]
    return [_synthetic(folder, case)]


@pytest.mark.parametrize("fmt", ["html", "md", "json"])
@pytest.mark.parametrize("case", CASES)
def test_report_is_unchanged(
    case: str, fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    journals = _journals(tmp_path, case)
    files, warnings = build(journals, None, Path(f"report.{fmt}"), fmt)
    for path, data in files.items():
        if path.suffix == ".png":  # its digest: the bytes are large and only need to be equal
            _compare(f"{case}/{path.name}.sha256", hashlib.sha256(data).hexdigest().encode())
        else:
            _compare(f"{case}/{path.name}", data)
    _compare(f"{case}/warnings.txt", "".join(w + "\n" for w in warnings).encode())


def _journal_with_log(folder: Path, case: str) -> dict[str, Any]:
    """Return the in-memory journal of `case` as a control gets it, its log recorded."""
    (name,) = _journals(folder, case)
    journal: dict[str, Any] = json.loads(name.read_text())
    for entry in journal.get("extensions", []):
        if entry.get("name") == "chaosraysvc" and case != "run1-no-log":
            entry["traffic"]["log"] = name.name.replace(".json", "-traffic.jsonl")
    return journal


METRIC_CASES = [*REAL, "run1-no-log", "passing", "failed-fault"]


@pytest.mark.parametrize("case", METRIC_CASES)
def test_metrics_are_unchanged(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    journal = _journal_with_log(tmp_path, case)
    monkeypatch.setenv("RAYSVC_METRICS_TEXTFILE", "metrics.prom")
    monkeypatch.delenv("RAYSVC_METRICS_PUSHGATEWAY", raising=False)
    metrics_control.publish(journal, {})
    _compare(f"{case}/metrics.prom", (tmp_path / "metrics.prom").read_bytes())
    _compare(f"{case}/journal-after-metrics.json", json.dumps(journal, indent=1).encode())


@pytest.mark.parametrize("case", METRIC_CASES)
def test_settled_journal_is_unchanged(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    journal = _journal_with_log(tmp_path, case)
    verdict_control.settle(journal)
    _compare(f"{case}/journal-after-verdict.json", json.dumps(journal, indent=1).encode())
