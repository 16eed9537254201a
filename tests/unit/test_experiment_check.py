"""A mistake in an experiment or a setting is one line saying what, where and what to do.

`chaos run` shows a traceback for a JSON syntax error and for `RAYSVC_EXPECTED_ENDPOINTS=two`
(both in Chaos Toolkit, before chaosraysvc runs); `chaosraysvc experiments check` names them
in one line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosraysvc.cli import main

ROOT = Path(__file__).resolve().parents[2]
HEAD_KILL = ROOT / "experiments" / "head-kill.json"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RAYSVC_EXPECTED_ENDPOINTS", "RAYSVC_RECOVERY_TIMEOUT", "RAYSVC_GRACE_PERIOD"):
        monkeypatch.delenv(name, raising=False)


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_a_setting_that_is_no_number_is_one_line_naming_the_variable_and_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAYSVC_EXPECTED_ENDPOINTS", "two")

    assert main(["experiments", "check", str(HEAD_KILL)]) == 1

    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    line = line_of(HEAD_KILL, '"expected_endpoints"')
    assert f"{HEAD_KILL}: $RAYSVC_EXPECTED_ENDPOINTS is 'two', not a whole number" in err
    assert f"configuration 'expected_endpoints', line {line}" in err
    assert "set a whole number such as 3 (the default), or unset it" in err


def test_a_json_syntax_error_is_one_line_with_its_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "mine.json"
    broken.write_text('{\n  "title": "x",\n  "method": [\n}\n')

    assert main(["experiments", "check", str(broken)]) == 1

    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"{broken}: line 4, column 1:" in err and "fix the JSON there" in err


def test_every_shipped_experiment_checks_clean(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in (ROOT / "experiments").glob("*.json"))

    assert main(["experiments", "check", *files]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{f}: ok" for f in files]
