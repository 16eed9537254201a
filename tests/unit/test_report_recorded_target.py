"""A report names the target the run recorded, not the configuration's defaults."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "reports" / "demo-pass-journal.json"


def test_the_recorded_target_wins_over_the_defaults(tmp_path: Path) -> None:
    journal = tmp_path / "journal.json"
    data = json.loads(FIXTURE.read_text())
    for entry in data["extensions"]:
        if entry.get("name") == "chaosraysvc":
            entry["target"] = {"target": "kubernetes", "rayservice": "svc-a", "namespace": "ns-b"}
    journal.write_text(json.dumps(data))
    out = tmp_path / "figures.json"
    cmd = [sys.executable, "-m", "chaosraysvc.cli", "report", str(journal), "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    target = json.loads(out.read_text())["runs"][0]["about"]["target"]
    assert target["rayservice_name"]["value"] == "svc-a"
    assert target["rayservice_namespace"]["value"] == "ns-b"
    assert target["rayservice_name"]["source"] == "the run's configuration"
