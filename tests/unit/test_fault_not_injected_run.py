"""`chaos run` of a fault that is never injected: exit 1, journal `failed`, `run-failed` sent.

The experiment is experiments/gcs-kill.json with its own fault action and controls (the
traffic control, pointed at a loopback service, and the verdict control), its traffic
probes as the steady state (no Ray here), and its fault action run for real against a
target that cannot take it: the kubernetes target with an API server that is not there, or
the sandbox target with no sandbox. chaoslib records the action failed and, on its own,
ends the run `completed` and exits 0. The same loopback server takes the webhook
notifications of the Chaos Toolkit settings file.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.loopback import LoopbackServer, QuietHandler

ROOT = Path(__file__).resolve().parents[2]
CHAOS = Path(sys.executable).parent / "chaos"
REPORTER = Path(sys.executable).parent / "chaosraysvc"


class Loopback:
    """A service answering 200 to every request, and a webhook receiver at /hook."""

    def __init__(self) -> None:
        self.hooks: list[dict[str, Any]] = []
        hooks = self.hooks

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                body = self.body()
                if self.path == "/hook":
                    hooks.append(json.loads(body))
                self.answer(200, b"12")

            do_GET = do_POST = _handle

        self.server = LoopbackServer(Handler)
        self.url = self.server.url

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def loopback() -> Iterator[Loopback]:
    lb = Loopback()
    try:
        yield lb
    finally:
        lb.close()


def experiment(service: str) -> dict[str, Any]:
    """Return experiments/gcs-kill.json with traffic to `service` and no Ray in its hypothesis."""
    exp = json.loads((ROOT / "experiments" / "gcs-kill.json").read_text())
    for control in exp["controls"]:
        if control["name"] == "traffic":
            control["provider"]["arguments"] = {"url": service, "mode": "rate", "rate": 40}
    hypothesis = exp["steady-state-hypothesis"]
    hypothesis["probes"] = [
        p
        for p in hypothesis["probes"]
        if p["provider"]["module"].endswith("traffic_probes") or p["name"] == "zero-failed-requests"
    ]
    exp["method"] = [a for a in exp["method"] if a["type"] == "action"]
    for action in exp["method"]:
        action.pop("pauses", None)
    exp["rollbacks"] = [r for r in exp["rollbacks"] if r["name"] == "stop-traffic"]
    return exp


def write_kubeconfig(path: Path) -> Path:
    """Write a kubeconfig naming an API server on a loopback port where nothing listens."""
    with socket.socket() as probe:  # a port just free: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = f"https://127.0.0.1:{port}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "gone", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}],
        "current-context": "gone",
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("target", ["kubernetes", "sandbox"])
def test_chaos_run_of_a_fault_never_injected_fails_and_notifies(
    tmp_path: Path, loopback: Loopback, target: str
) -> None:
    (tmp_path / "experiment.json").write_text(json.dumps(experiment(loopback.url)))
    settings = {
        "notifications": [
            {
                "type": "http",
                "url": f"{loopback.url}/hook",
                "events": ["run-completed", "run-failed", "run-deviated"],
            }
        ]
    }
    (tmp_path / "settings.yaml").write_text(yaml.safe_dump(settings))
    env = dict(os.environ) | {
        "RAYSVC_TARGET": target,
        "RAYSVC_SANDBOX_DIR": str(tmp_path / "no-sandbox"),
        "KUBECONFIG": str(write_kubeconfig(tmp_path / "kubeconfig")),
        "RAYSVC_RECOVERY_TIMEOUT": "30",
    }
    cmd = [str(CHAOS), "--no-version-check", "--settings", str(tmp_path / "settings.yaml")]
    cmd += ["--log-file", str(tmp_path / "chaos.log"), "run"]
    cmd += ["--journal-path", str(tmp_path / "journal.json"), str(tmp_path / "experiment.json")]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    print(proc.stdout[-3000:], proc.stderr[-3000:])

    assert proc.returncode == 1, "a run whose fault was not injected exits 1"
    journal = json.loads((tmp_path / "journal.json").read_text())
    [action] = journal["run"]
    assert action["activity"]["name"] == "kill-gcs-server" and action["status"] == "failed"
    assert (journal["status"], journal["deviated"]) == ("failed", False)
    assert journal["steady_states"]["after"]["steady_state_met"] is True  # it "held"
    extension = next(e for e in journal["extensions"] if e["name"] == "chaosraysvc")
    settled = extension["verdict"]
    assert settled["outcome"] == "inconclusive" and settled["status_was"] == "completed"
    assert settled["headline"].startswith(
        "Inconclusive: the fault was not injected: action 'kill-gcs-server' failed: "
    )
    assert "The run is marked failed: Inconclusive" in (tmp_path / "chaos.log").read_text()
    names = [hook["name"] for hook in loopback.hooks]
    assert "run-failed" in names and "run-completed" not in names, names
    hook = next(h for h in loopback.hooks if h["name"] == "run-failed")
    assert hook["payload"]["status"] == "failed"

    report = subprocess.run(
        [str(REPORTER), "report", str(tmp_path / "journal.json"), "--format", "md"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert report.returncode == 0, report.stderr
    markdown = (tmp_path / "report.md").read_text()
    first = markdown.splitlines()[0]
    assert first.startswith("## INCONCLUSIVE: the fault was not injected: action 'kill-gcs-server'")
    assert "status `failed`" in markdown and "PASSED" not in markdown
