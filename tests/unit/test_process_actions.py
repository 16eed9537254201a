"""kill_gcs_server's checks, and finding a process by name inside a pod's session."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from chaosraysvc.activities import process_actions
from chaosraysvc.errors import ConfigurationError
from chaosraysvc.runtime import sessions as procs


def test_a_process_is_found_by_its_name_in_its_session(tmp_path: Path) -> None:
    sleep = shutil.which("sleep")
    assert sleep
    named = tmp_path / "gcs_server"
    shutil.copy(sleep, named)
    child = subprocess.Popen([str(named), "30"], start_new_session=True)
    try:
        found = [p for p in procs.session_pids(child.pid) if procs.comm_of(p) == "gcs_server"]
        assert found == [child.pid]
        assert procs.comm_of(2**22 + 7) == ""  # no such process
    finally:
        child.kill()
        child.wait()


def test_a_non_positive_timeout_is_refused_before_anything() -> None:
    with pytest.raises(ConfigurationError, match="timeout must be > 0"):
        process_actions.kill_gcs_server(timeout=0)
