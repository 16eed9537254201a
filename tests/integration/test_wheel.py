"""The extension's wheel in a fresh venv runs `chaos run` against the sandbox, as a user would.

Issue 24 item 1: the wheel installs with its own requirements only (no Go, no lab, no
`dnslib`, no direct `cryptography`), `chaos discover`, `chaosraysvc experiments export`,
`chaos run` and `chaosraysvc report` work from it. The sandbox itself is the test session's
(started from this checkout): the wheel's activities drive it through its state directory,
as they would a sandbox a user started with `chaosraysvc sandbox up`.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

import pytest

from chaosraysvc.sandbox.manager import Sandbox
from tests.support.wheel import WheelVenv

pytestmark = pytest.mark.sandbox
LAB_ONLY = {"dnslib", "cryptography"}  # the lab's, never the extension's own requirements


def user_env(wheel: WheelVenv) -> dict[str, str]:
    """The environment of a user of that venv: its bin first, nothing of this checkout's."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{wheel.bin}:/usr/local/bin:/usr/bin:/bin"
    return env


def test_the_wheel_needs_nothing_of_the_lab(user_wheel: WheelVenv, tmp_path: Path) -> None:
    names = zipfile.ZipFile(user_wheel.wheel).namelist()
    assert "chaosraysvc/data/experiments/head-kill.json" in names
    assert not [n for n in names if n.startswith("chaosraysvc_lab") or n.endswith((".go", ".sh"))]
    env = user_env(user_wheel)
    code = "import importlib.metadata as m; print('\\n'.join(m.requires('chaosraysvc') or []))"
    done = user_wheel.run("python", "-c", code, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    required = {
        re.split(r"[\s;<>=!~\[]", line, maxsplit=1)[0].lower()
        for line in done.stdout.splitlines()
        if line and "extra ==" not in line
    }
    assert "chaostoolkit-lib" in required and not required & LAB_ONLY, required
    lab = user_wheel.run("python", "-c", "import chaosraysvc_lab", env=env, cwd=tmp_path)
    assert lab.returncode != 0 and "No module named 'chaosraysvc_lab'" in lab.stderr


def test_a_user_runs_head_kill_from_the_wheel_against_the_sandbox(
    user_wheel: WheelVenv, healthy_sandbox: Sandbox, tmp_path: Path
) -> None:
    env = user_env(user_wheel) | {
        "RAYSVC_TARGET": "sandbox",
        "RAYSVC_SANDBOX_DIR": str(healthy_sandbox.state_dir),
        "RAYSVC_EXPECTED_ENDPOINTS": "3",
        "RAYSVC_RECOVERY_TIMEOUT": "240",
    }
    exported = user_wheel.run("chaosraysvc", "experiments", "export", ".", env=env, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "experiments" / "head-kill.json").is_file()

    discover = user_wheel.run(
        "chaos", "--no-version-check", "discover", "--no-install", "--discovery-path",
        "discovery.json", "chaosraysvc", env=env, cwd=tmp_path,
    )  # fmt: skip
    assert discover.returncode == 0, discover.stdout + discover.stderr
    activities = json.loads((tmp_path / "discovery.json").read_text())["activities"]
    assert "delete_head_pod" in {a["name"] for a in activities}

    run = user_wheel.run(
        "chaos", "--no-version-check", "run", "--journal-path", "journal.json",
        "experiments/head-kill.json", env=env, cwd=tmp_path, timeout=900,
    )  # fmt: skip
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["status"] == "completed", run.stdout[-3000:] + run.stderr[-3000:]
    deleted = next(r for r in journal["run"] if r["activity"]["name"] == "delete-head-pod")
    assert deleted["status"] == "succeeded", deleted.get("exception")
    assert deleted["output"]["recovery"]["recovered"] is True
    assert deleted["activity"]["provider"]["module"].startswith("chaosraysvc.")

    report = user_wheel.run("chaosraysvc", "report", "journal.json", env=env, cwd=tmp_path)
    assert report.returncode == 0, report.stdout + report.stderr
    html = (tmp_path / "report.html").read_text()
    assert journal["experiment"]["title"] in html
    outcome = "deviated" if journal["deviated"] else "passed"
    assert f'class="verdict {outcome}"' in html, report.stdout
