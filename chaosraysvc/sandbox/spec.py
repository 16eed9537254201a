"""What a sandbox is made of: ports, node counts, storage, restart delay.

The spec is chosen at `up`, written to `<state dir>/spec.json`, and read back by
the supervisor and by every command that looks at the sandbox.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from chaosraysvc.errors import ConfigurationError

RedisStorage = Literal["persistent", "ephemeral"]


@dataclass(frozen=True)
class SandboxSpec:
    """Settings of one sandbox (what `chaosraysvc sandbox up` accepts)."""

    state_dir: Path
    serve_port: int = 8000
    dashboard_port: int = 8265
    workers: int = 2
    restart_delay: float = 5.0
    redis_storage: RedisStorage = "persistent"
    head_in_serve_svc: bool = True
    # Every proxy on a port of its own, the serve port a balancer over them (`service.py`).
    endpoint_ports: bool = False
    rayservice_name: str = "rayservice-ha"
    namespace: str = "default"
    # Filled in by `up` when left at 0: chosen free ports.
    redis_port: int = 0
    gcs_port: int = 0
    head_proxy_port: int = 0  # the head's own proxy port (see `head_has_own_port`)

    def validate(self) -> None:
        """Raise `ConfigurationError` naming the first bad setting and its allowed values."""
        for name in ("serve_port", "dashboard_port", "redis_port", "gcs_port", "head_proxy_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535 or (port == 0 and name in ("serve_port", "dashboard_port")):
                raise ConfigurationError(
                    f"{name.replace('_', '-')} {port} is not a TCP port (1-65535)"
                )
        if not 1 <= self.workers <= 8:
            raise ConfigurationError(f"workers {self.workers}: choose between 1 and 8 worker nodes")
        if not 0 <= self.restart_delay <= 600:
            raise ConfigurationError(
                f"restart-delay {self.restart_delay}: choose between 0 and 600 seconds"
            )
        if self.redis_storage not in ("persistent", "ephemeral"):
            raise ConfigurationError(
                f"redis-storage {self.redis_storage!r}: use 'persistent' or 'ephemeral'"
            )
        ports = [
            self.serve_port,
            self.dashboard_port,
            self.redis_port,
            self.gcs_port,
            self.head_proxy_port,
        ]
        used = [p for p in ports if p]
        if len(set(used)) != len(used):
            raise ConfigurationError(f"ports must differ, got {ports}")

    @property
    def head_has_own_port(self) -> bool:
        """Tell whether the head's proxy binds `head_proxy_port` rather than the serve port."""
        return self.endpoint_ports or not self.head_in_serve_svc

    @property
    def cluster_name(self) -> str:
        """Name of the sandbox's RayCluster, KubeRay style."""
        return f"{self.rayservice_name}-raycluster"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["state_dir"] = str(self.state_dir)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxSpec:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["state_dir"] = Path(values["state_dir"])
        return cls(**values)

    def save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "spec.json").write_text(json.dumps(self.to_json(), indent=2))

    @classmethod
    def load(cls, state_dir: Path) -> SandboxSpec:
        return cls.from_json(json.loads((state_dir / "spec.json").read_text()))
