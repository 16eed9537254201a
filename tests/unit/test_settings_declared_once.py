"""Each setting is declared once (chaosraysvc/config.py:SETTINGS); what users read follows it."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosraysvc import config
from chaosraysvc.report import figures

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("group", ["target", "metrics"])
def test_the_readmes_table_of_each_group_is_the_declaration(group: str) -> None:
    table = config.settings_table(group)
    assert table.count("\n") >= 4, table
    assert table in (ROOT / "README.md").read_text(), (
        f"README.md's table of {group} settings differs from chaosraysvc/config.py:SETTINGS; "
        f"paste:\n{table}"
    )


def test_the_kubernetes_guide_lists_every_target_setting_as_declared() -> None:
    guide = (ROOT / "docs" / "kubernetes.md").read_text()
    rows = config.settings_table("target").splitlines()
    assert [row for row in rows if row not in guide] == []


def test_every_setting_reads_its_variable_and_falls_back_to_its_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for spec in config.SETTINGS:
        monkeypatch.delenv(spec.env, raising=False)
        assert config.setting({}, spec.key) == spec.default
        monkeypatch.setenv(spec.env, "from-env")
        assert config.setting({}, spec.key) == "from-env"
        assert config.setting({spec.key: "configured"}, spec.key) == "configured"
    assert len({s.key for s in config.SETTINGS}) == len(config.SETTINGS)
    assert len({s.env for s in config.SETTINGS}) == len(config.SETTINGS)


def test_the_report_shows_the_target_settings_the_declaration_names() -> None:
    assert tuple(s.key for s in config.SETTINGS if s.group == "target") == config.TARGET_KEYS
    assert figures.TARGET_KEYS is config.TARGET_KEYS
