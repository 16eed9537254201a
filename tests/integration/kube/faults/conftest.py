"""Fixtures: the HTTP-level API double, only for what a real API server will not do on demand.

`start_cluster` serves the seed from `ApiDouble` (kmock) on loopback and points KUBECONFIG at
it. The double enforces the Role in deploy/role.yaml and records every call it serves.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chaosraysvc.config import Settings
from chaosraysvc.targets.kubernetes import KubernetesTarget

from .. import seed
from .apidouble import ApiDouble, Rbac
from .server import TOKEN, DoubleServer, write_kubeconfig

REPO = Path(__file__).resolve().parents[4]
ROLE_MANIFEST = REPO / "deploy" / "role.yaml"


def shipped_rbac() -> Rbac:
    """Return the Role in deploy/role.yaml, enforced in namespace "default"."""
    return Rbac.from_manifest(ROLE_MANIFEST, namespace=seed.NAMESPACE)


@dataclass
class Cluster:
    """A running API double and the kubeconfig that reaches it."""

    server: DoubleServer
    kubeconfig: Path

    @property
    def double(self) -> ApiDouble:
        return self.server.double

    def target(self, request_timeout: float = 5.0, **settings: Any) -> KubernetesTarget:
        """Return a `KubernetesTarget` for the seeded RayService (override any setting)."""
        values: dict[str, Any] = {
            "target": "kubernetes",
            "rayservice_name": seed.RAYSERVICE,
            "rayservice_namespace": seed.NAMESPACE,
        }
        values.update(settings)
        return KubernetesTarget(Settings(**values), request_timeout=request_timeout)


StartCluster = Callable[..., Cluster]


@pytest.fixture
def start_cluster(kube_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StartCluster]:
    """Return a function starting an API double; all of them stop when the test ends."""
    tmp_path = kube_env
    counter = itertools.count()

    with contextlib.ExitStack() as stack:

        def start(
            objects: list[dict[str, Any]] | None = None,
            *,
            rbac: Rbac | None = None,
            stall: float = 0.0,
        ) -> Cluster:
            double = ApiDouble(token=TOKEN, rbac=rbac or shipped_rbac(), stall=stall)
            server = stack.enter_context(
                DoubleServer(double, seed.ha_sample() if objects is None else objects)
            )
            path = write_kubeconfig(tmp_path / f"kubeconfig-{next(counter)}", server.url)
            monkeypatch.setenv("KUBECONFIG", str(path))
            return Cluster(server, path)

        yield start
