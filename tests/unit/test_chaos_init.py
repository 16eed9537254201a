"""`chaos init` offers chaosraysvc's activities: a new experiment made from `chaos discover`'s
answer, as a user would answer its questions, names our modules and runs `chaos validate`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.fast
CHAOS = Path(sys.executable).parent / "chaos"


def _chaos(*argv: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"TERM": "dumb"}
    return subprocess.run([str(CHAOS), *argv], cwd=cwd, input=stdin, capture_output=True,
                          text=True, env=env, timeout=120, check=False)  # fmt: skip


def _pick(activities: list[dict[str, Any]], name: str) -> str:
    """The answers choosing activity `name` from `activities` (1-based) with its defaults."""
    index = next(i for i, a in enumerate(activities) if a["name"] == name) + 1
    args = [a for a in activities[index - 1].get("arguments", [])
            if a["name"] not in ("configuration", "secrets")]  # fmt: skip
    return f"{index}\ny\n" + "".join("\n" for _ in args)


def test_chaos_init_builds_an_experiment_from_our_probes_and_actions(tmp_path: Path) -> None:
    found = _chaos("discover", "--no-install", "chaosraysvc", cwd=tmp_path)
    assert found.returncode == 0, found.stderr[-2000:]
    activities = json.loads((tmp_path / "discovery.json").read_text())["activities"]
    probes = [a for a in activities if a["type"] == "probe"]
    # the tolerance is asked before the arguments
    index = next(i for i, a in enumerate(probes) if a["name"] == "serve_error_ratio") + 1
    args = [a for a in probes[index - 1]["arguments"]
            if a["name"] not in ("configuration", "secrets")]  # fmt: skip
    answers = ("Serve keeps its error ratio\ny\nServe answers\n"
               f"{index}\ny\n0\n" + "\n" * len(args) + "n\n"  # one probe, tolerance 0
               "y\n" + _pick(activities, "delete_head_pod") + "n\n"  # the method: one action
               "n\n")  # no rollbacks  # fmt: skip
    made = _chaos("init", cwd=tmp_path, stdin=answers)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-2000:]
    experiment = json.loads((tmp_path / "experiment.json").read_text())
    (probe,) = experiment["steady-state-hypothesis"]["probes"]
    assert probe["provider"]["module"] == "chaosraysvc.activities.metric_probes"
    assert probe["provider"]["func"] == "serve_error_ratio"
    assert probe["provider"]["arguments"]["window"] == "run"
    (action,) = experiment["method"]
    assert (action["provider"]["module"], action["provider"]["func"]) == (
        "chaosraysvc.activities.pod_actions", "delete_head_pod")  # fmt: skip
    checked = _chaos("validate", "experiment.json", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]
