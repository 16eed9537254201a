"""`chaosraysvc controlplane up | status | down` as a user runs it: nothing left behind, ever.

Each test starts a control plane of its own (the session's stays up for the other tests).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosraysvc.cli import main
from chaosraysvc.doctor.cli import EXIT_NOT_INSPECTED
from chaosraysvc.runtime import sessions as procs
from chaosraysvc_lab.controlplane import ControlPlane
from tests.support.polling import wait_for

pytestmark = pytest.mark.apiserver

CLI = [sys.executable, "-m", "chaosraysvc_lab.cli", "controlplane"]


def _alive(plane: ControlPlane) -> list[str]:
    state = plane.state()
    names = [c.name for c in state.components if procs.session_pids(c.sid)] if state else []
    return names


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A state dir whose control plane is brought down even when the test fails."""
    directory = tmp_path / "cp"
    try:
        yield directory
    finally:
        ControlPlane(directory).down()


def test_up_status_down_from_the_cli_leaves_no_process(state_dir: Path) -> None:
    up = subprocess.run(
        [*CLI, "up", "--state-dir", str(state_dir)], capture_output=True, text=True, timeout=120
    )
    assert up.returncode == 0, up.stdout + up.stderr
    assert "KubeRay CRDs established; control plane ready in" in up.stdout
    assert f"export KUBECONFIG={state_dir.resolve()}/admin.kubeconfig" in up.stdout

    status = subprocess.run(
        [*CLI, "status", "--json", "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    body = json.loads(status.stdout)
    assert status.returncode == 0 and body["up"] is True
    assert body["components"] == {
        "etcd": True,
        "kube-apiserver": True,
        "kube-controller-manager": True,
    }
    plane = ControlPlane(state_dir)
    state = plane.state()
    assert state is not None
    sids = [c.sid for c in state.components]

    down = subprocess.run(
        [*CLI, "down", "--state-dir", str(state_dir)], capture_output=True, text=True, timeout=60
    )

    assert down.returncode == 0, down.stdout + down.stderr
    assert "control plane down in" in down.stdout
    assert all(not procs.session_pids(sid) for sid in sids)
    again = subprocess.run(
        [*CLI, "status", "--state-dir", str(state_dir)], capture_output=True, text=True
    )
    assert again.returncode == 1 and "down" in again.stdout


def test_ctrl_c_during_up_ends_every_process_it_started(state_dir: Path) -> None:
    proc = subprocess.Popen(
        [*CLI, "up", "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    plane = ControlPlane(state_dir)
    try:
        wait_for(lambda: "kube-apiserver" in _alive(plane), 60, what="kube-apiserver to start")
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert code == 130
    assert _alive(plane) == []


def test_an_api_server_that_is_down_is_named_with_an_exit_code(
    state_dir: Path,
    kube_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plane = ControlPlane(state_dir)
    state = plane.up()
    plane.down()
    monkeypatch.setenv("KUBECONFIG", str(plane.kubeconfig))
    started = time.monotonic()

    code = main(["doctor", "--target", "kubernetes"])

    err = capsys.readouterr().err
    assert code == EXIT_NOT_INSPECTED == 3
    assert "could not inspect RayService default/rayservice-ha" in err
    assert f"the Kubernetes API at {state.server} is unreachable" in err
    assert "check $KUBECONFIG" in err
    assert time.monotonic() - started < 30
