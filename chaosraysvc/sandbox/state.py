"""The sandbox's state file: which pods exist, their process sessions and phases.

Only the supervisor writes `<state dir>/state.json` (atomically, by rename);
commands read it. A delete request is a file `<state dir>/deleting/<pod>` written
by the deleter *before* it ends the pod's processes, so the supervisor can tell a
deleted pod (replaced under a new name) from a crashed container (restarted in place).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chaosraysvc.runtime import sessions as procs

STATE_FILE = "state.json"


@dataclass
class PodRecord:
    """A sandbox pod: one process session standing for a Kubernetes pod."""

    name: str
    role: str  # head | worker | redis
    uid: str
    sid: int  # session id = pid of the pod's first process; 0 while Pending
    start_ticks: int
    created_at: float
    started_at: float
    restarts: int = 0
    phase: str = "Pending"
    labels: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    temp_dir: str = ""
    log: str = ""

    def alive(self) -> bool:
        """Tell whether the pod's first process still runs (and is the same process)."""
        return self.sid > 0 and procs.running(self.sid, self.start_ticks)


@dataclass
class SandboxState:
    """Everything the supervisor knows, as last written."""

    status: str  # starting | up | stopping | down | failed
    supervisor_pid: int
    supervisor_ticks: int
    sandbox_id: str
    cluster_name: str
    pods: list[PodRecord] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    app_deployed_at: float = 0.0
    # With endpoint ports: the pods the serve Service balances to (its Endpoints object).
    ready_endpoints: list[str] = field(default_factory=list)
    message: str = ""
    updated_at: float = 0.0

    def supervisor_alive(self) -> bool:
        procs.reap(self.supervisor_pid)
        return procs.running(self.supervisor_pid, self.supervisor_ticks)

    def pod(self, name: str) -> PodRecord | None:
        return next((p for p in self.pods if p.name == name), None)

    def save(self, state_dir: Path) -> None:
        self.updated_at = time.time()
        tmp = state_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        os.replace(tmp, state_dir / STATE_FILE)

    @classmethod
    def load(cls, state_dir: Path) -> SandboxState | None:
        path = state_dir / STATE_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None
        pods = [PodRecord(**p) for p in data.pop("pods", [])]
        return cls(pods=pods, **data)


def deleting_dir(state_dir: Path) -> Path:
    return state_dir / "deleting"


def request_deletion(state_dir: Path, pod_name: str, grace_period: float) -> None:
    """Record that `pod_name` is being deleted (before its processes are ended)."""
    directory = deleting_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    payload = {"t": time.time(), "grace_period": grace_period}
    (directory / pod_name).write_text(json.dumps(payload))


def deletion_time(state_dir: Path, pod_name: str) -> float | None:
    """Return when `pod_name`'s deletion was requested (its deletionTimestamp), if it was."""
    try:
        return float(json.loads((deleting_dir(state_dir) / pod_name).read_text())["t"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def deletion_requested(state_dir: Path, pod_name: str) -> bool:
    return (deleting_dir(state_dir) / pod_name).exists()


def clear_deletion(state_dir: Path, pod_name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (deleting_dir(state_dir) / pod_name).unlink()
