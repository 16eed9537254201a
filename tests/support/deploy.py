"""What the CronJob in deploy/ runs: its Chaos Toolkit settings file (from its ConfigMap)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CRONJOB = Path(__file__).resolve().parents[2] / "deploy" / "cronjob.yaml"


def cronjob_objects() -> dict[str, dict[str, Any]]:
    """Return the objects of deploy/cronjob.yaml by kind."""
    return {d["kind"]: d for d in yaml.safe_load_all(CRONJOB.read_text()) if d}


def cronjob_settings() -> dict[str, Any]:
    """Return the `chaos --settings` file the CronJob mounts, parsed."""
    text = cronjob_objects()["ConfigMap"]["data"]["settings.yaml"]
    settings = yaml.safe_load(text)
    assert isinstance(settings, dict)
    return settings
