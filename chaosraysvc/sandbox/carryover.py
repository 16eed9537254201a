"""What one sandbox leaves in its state directory for the next `up`, and wiping it.

After `sandbox down`, the state directory keeps:

- `redis-data/`: the GCS Redis' append-only file (and any RDB snapshot), that is the Ray
  cluster's GCS state: its session, nodes, jobs and the KV store holding the Serve
  applications. A new head restores from it, so a new `up` would resume the previous
  cluster (its session named from when *that* sandbox started). Wiped by `up` unless
  `--keep-state`.
- `redis/`: the Redis pods' config files (with the previous Redis password). Wiped with
  `redis-data/`.
- `logs/`: the supervisor's and the pods' logs. Always kept; a new `up` appends to them.
- `spec.json`, `state.json`, `redis-password`: rewritten by every `up`.

The Ray nodes' session directories live under `/tmp/crs-<sandbox id>` and are removed by
`down` (or by the next `up`, after a crash).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CLUSTER_STATE", "Carryover", "settle_previous_state"]

CLUSTER_STATE = ("redis-data", "redis")  # a previous sandbox's Ray cluster state


@dataclass(frozen=True)
class Carryover:
    """What `up` found of a previous sandbox in `state_dir`, and what it did with it."""

    state_dir: Path
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    logs_kept: bool = False

    def lines(self) -> list[str]:
        """Return what to tell the user, one line each (empty when there was nothing)."""
        said: list[str] = []
        if self.removed:
            said.append(
                f"removed the previous sandbox's Ray cluster state (GCS Redis data) in "
                f"{self.state_dir}: {', '.join(self.removed)}; this sandbox starts a new "
                "cluster (--keep-state keeps it)"
            )
        if self.kept:
            said.append(
                f"kept the previous sandbox's Ray cluster state (GCS Redis data) in "
                f"{self.state_dir}: {', '.join(self.kept)} (--keep-state); the new head "
                "restores its session, jobs and Serve applications"
            )
        if self.logs_kept:
            said.append(f"kept the previous logs in {self.state_dir / 'logs'} (appended to)")
        return said


def settle_previous_state(state_dir: Path, keep_state: bool = False) -> Carryover:
    """Remove a previous sandbox's Ray cluster state from `state_dir`, unless `keep_state`.

    Removes (or keeps) the `CLUSTER_STATE` directories that exist and returns which, with
    whether logs of a previous sandbox are there. Call it only when no sandbox is up there.
    """
    found = [name for name in CLUSTER_STATE if (state_dir / name).exists()]
    if not keep_state:
        for name in found:
            path = state_dir / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    logs = state_dir / "logs"
    logs_kept = logs.is_dir() and any(logs.iterdir())
    if keep_state:
        return Carryover(state_dir, kept=found, logs_kept=logs_kept)
    return Carryover(state_dir, removed=found, logs_kept=logs_kept)
