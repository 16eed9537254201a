"""The sandbox's deletion requests: recorded before the kill, read back by the supervisor."""

from __future__ import annotations

import time
from pathlib import Path

from chaosraysvc.sandbox import state


def test_a_deletion_request_keeps_its_timestamp_until_cleared(tmp_path: Path) -> None:
    before = time.time()
    state.request_deletion(tmp_path, "worker-a", grace_period=0)

    assert state.deletion_requested(tmp_path, "worker-a")
    requested = state.deletion_time(tmp_path, "worker-a")
    assert requested is not None and before <= requested <= time.time()

    state.clear_deletion(tmp_path, "worker-a")

    assert not state.deletion_requested(tmp_path, "worker-a")
    assert state.deletion_time(tmp_path, "worker-a") is None


def test_a_damaged_deletion_request_has_no_timestamp(tmp_path: Path) -> None:
    state.deleting_dir(tmp_path).mkdir()
    (state.deleting_dir(tmp_path) / "worker-b").write_text("not json")

    assert state.deletion_requested(tmp_path, "worker-b")
    assert state.deletion_time(tmp_path, "worker-b") is None
