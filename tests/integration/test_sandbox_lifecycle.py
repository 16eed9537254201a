"""Ctrl-C during `sandbox up` stops everything it started; `up` starts a new Ray cluster."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from chaosraysvc.runtime import sessions as procs
from chaosraysvc.runtime.ports import free_port
from chaosraysvc.sandbox.state import SandboxState
from tests.support.polling import wait_for

pytestmark = pytest.mark.sandbox


def test_ctrl_c_during_up_leaves_no_process() -> None:
    # Removed whatever happens, also when the test fails (no crs-int-* left in /tmp).
    with tempfile.TemporaryDirectory(prefix="crs-int-", ignore_cleanup_errors=True) as tmp:
        ctrl_c_during_up(Path(tmp))


def ctrl_c_during_up(state_dir: Path) -> None:
    # A previous sandbox's GCS Redis data: restored by the new head unless `up` removes it.
    previous = state_dir / "redis-data" / "from-a-previous-sandbox"
    previous.parent.mkdir()
    previous.write_text("x")
    cmd = [sys.executable, "-m", "chaosraysvc.cli", "sandbox", "up", "--state-dir", str(state_dir)]
    cmd += ["--serve-port", str(free_port()), "--dashboard-port", str(free_port())]
    up = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sids: set[int] = set()
    try:

        def head_started() -> SandboxState | None:
            state = SandboxState.load(state_dir)
            return state if state and any(p.role == "head" and p.sid for p in state.pods) else None

        state = wait_for(head_started, 120, what="the sandbox to start its head pod", interval=0.2)
        sids = {p.sid for p in state.pods if p.sid} | {state.supervisor_pid}
        up.send_signal(signal.SIGINT)
        out, _ = up.communicate(timeout=60)
        assert up.returncode == 130, out
        assert "interrupted" in out
        assert f"Ray cluster state (GCS Redis data) in {state_dir.resolve()}: redis-data" in out
        assert not previous.exists()
        for sid in sids:
            assert procs.session_pids(sid) == [], f"session {sid} left behind"
    finally:
        if up.poll() is None:
            up.kill()
        state = SandboxState.load(state_dir)
        for pod in state.pods if state else []:
            if pod.sid:
                procs.kill_session(pod.sid)
