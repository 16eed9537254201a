"""docs/architecture.md's figures are the tree's: generated, and checked stale here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "architecture_figures.py"


def load() -> object:
    spec = importlib.util.spec_from_file_location("architecture_figures", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_docs_figures_are_what_the_tree_counts(capsys: pytest.CaptureFixture[str]) -> None:
    figures = load()
    code = figures.main(["--check"])  # type: ignore[attr-defined]
    assert code == 0, capsys.readouterr().err


def test_a_stale_block_is_reported_with_the_command_that_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = load()
    doc = tmp_path / "architecture.md"
    doc.write_text("# x\n<!-- figures:begin -->\n| tree | modules |\n<!-- figures:end -->\ntail\n")
    monkeypatch.setattr(figures, "DOC", doc)
    monkeypatch.setattr(figures, "ROOT", tmp_path)
    assert figures.main(["--check"]) == 1  # type: ignore[attr-defined]
    assert "architecture_figures.py --write" in capsys.readouterr().err
    assert figures.main(["--write"]) == 0  # type: ignore[attr-defined]
    text = doc.read_text()
    assert text.endswith("<!-- figures:end -->\ntail\n") and "| extension (" in text
    assert figures.main(["--check"]) == 0  # type: ignore[attr-defined]


def test_an_edit_passes_and_a_new_module_or_a_big_change_does_not() -> None:
    figures = load()
    now = figures.counted()  # type: ignore[attr-defined]
    name = next(iter(now))
    count, lines, untyped, largest = now[name]
    assert figures.stale(now, now) == []  # type: ignore[attr-defined]
    edited = {**now, name: (count, lines + 30, untyped + 2, largest)}
    assert figures.stale(edited, now) == []  # type: ignore[attr-defined]
    for changed in ((count + 1, lines, untyped, largest), (count, lines, untyped, "x.py"),
                    (count, int(lines * 1.2), untyped, largest),
                    (count, lines, untyped + 40, largest)):  # fmt: skip
        assert figures.stale({**now, name: changed}, now), changed  # type: ignore[attr-defined]
