"""Which sandbox `chaosraysvc sandbox up|status|down|logs` acts on: one rule for every command
(and for `doctor` and the activities): `--state-dir`, else `$RAYSVC_SANDBOX_DIR`, else the
default under `$XDG_STATE_HOME`. No Ray cluster is started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaosraysvc.cli import main
from chaosraysvc.config import resolve_sandbox_dir, settings_from
from chaosraysvc.runtime import sessions as procs
from chaosraysvc.sandbox.spec import SandboxSpec
from chaosraysvc.sandbox.state import SandboxState


def stopped_sandbox(state_dir: Path) -> Path:
    """A sandbox that was up once and is down now: spec, state file and supervisor log."""
    SandboxSpec(state_dir=state_dir).save()
    SandboxState("down", 0, 0, "deadbeef", "rayservice-ha-raycluster-x").save(state_dir)
    (state_dir / "logs").mkdir()
    (state_dir / "logs" / "supervisor.log").write_text("supervisor of the env-var sandbox\n")
    return state_dir


@pytest.fixture()
def env_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`$RAYSVC_SANDBOX_DIR` names a stopped sandbox; the default location is elsewhere."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("RAYSVC_SANDBOX_DIR", str(tmp_path / "from-env"))
    (tmp_path / "from-env").mkdir()
    return stopped_sandbox(tmp_path / "from-env")


def test_the_rule_is_option_then_environment_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("RAYSVC_SANDBOX_DIR", raising=False)
    default = tmp_path / "xdg" / "chaosraysvc" / "sandbox"
    assert resolve_sandbox_dir() == default
    monkeypatch.setenv("RAYSVC_SANDBOX_DIR", str(tmp_path / "env"))
    assert resolve_sandbox_dir("") == tmp_path / "env"
    assert resolve_sandbox_dir(str(tmp_path / "flag")) == tmp_path / "flag"
    # doctor and the activities resolve through the same rule
    assert settings_from({}).sandbox_state_dir == tmp_path / "env"
    assert settings_from({"sandbox_state_dir": "~/x"}).sandbox_state_dir == Path.home() / "x"


def test_status_reads_the_sandbox_named_by_the_environment(
    env_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sandbox", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["state"], status["state_dir"]) == ("down", str(env_dir.resolve()))


def test_the_option_wins_over_the_environment(
    env_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "from-option"
    assert main(["sandbox", "status", "--json", "--state-dir", str(other)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["state"], status["state_dir"]) == ("absent", str(other.resolve()))


def test_down_and_logs_act_on_the_sandbox_named_by_the_environment(
    env_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sandbox", "down"]) == 0
    assert f"no sandbox is up in {env_dir}" in capsys.readouterr().out
    assert main(["sandbox", "logs"]) == 0
    assert "supervisor of the env-var sandbox" in capsys.readouterr().out


def test_up_checks_the_sandbox_named_by_the_environment(
    env_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # This process plays the supervisor of a running sandbox there: `up` must refuse.
    ticks = procs.start_time_of(os.getpid()) or 0
    SandboxState("up", os.getpid(), ticks, "deadbeef", "rayservice-ha-raycluster-x").save(env_dir)
    assert main(["sandbox", "up"]) == 1
    assert f"a sandbox is already up in {env_dir.resolve()}" in capsys.readouterr().err


def test_the_installed_command_honours_the_environment(env_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chaosraysvc.cli", "sandbox", "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert (status["state"], status["state_dir"]) == ("down", str(env_dir.resolve()))
