"""Fixtures: a Kubernetes API double seeded with the KubeRay HA sample, reached by kubeconfig.

Every double enforces the Role shipped in deploy/role.yaml and records the calls it serves
into the session-wide `api_usage`, which `test_k8s_rbac.py` (run last) compares with the Role.
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

from . import seed
from .apidouble import ApiCall, ApiDouble, Rbac
from .server import TOKEN, DoubleServer, write_kubeconfig

REPO = Path(__file__).resolve().parents[3]
ROLE_MANIFEST = REPO / "deploy" / "role.yaml"

_ENV_TO_CLEAR = (
    "KUBECONFIG",
    "KUBERNETES_CONTEXT",
    "KUBERNETES_HOST",
    "KUBERNETES_API_KEY",
    "KUBERNETES_API_KEY_PREFIX",
    "KUBERNETES_USERNAME",
    "KUBERNETES_PASSWORD",
    "KUBERNETES_CERT_FILE",
    "KUBERNETES_KEY_FILE",
    "KUBERNETES_VERIFY_SSL",
    "KUBERNETES_CA_CERT_FILE",
    "CHAOSTOOLKIT_IN_POD",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "RAYSVC_SERVE_URL",
    "RAYSVC_DASHBOARD_URL",
    "RAYSVC_REDIS_LABEL_SELECTOR",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the Role-versus-usage check after every other test of the session."""
    last = [item for item in items if "test_k8s_rbac.py" in item.nodeid]
    items[:] = [item for item in items if item not in last] + last


def shipped_rbac() -> Rbac:
    """Return the Role in deploy/role.yaml, enforced in namespace "default"."""
    return Rbac.from_manifest(ROLE_MANIFEST, namespace=seed.NAMESPACE)


@pytest.fixture(scope="session")
def api_usage() -> list[ApiCall]:
    """Every call any API double served or refused during the session."""
    return []


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

    def pod_names(self) -> set[str]:
        """Return the names of the live pods in the double."""
        pods = self.server.call(self.double.live, "v1/pods")
        return {p["metadata"]["name"] for p in pods}


StartCluster = Callable[..., Cluster]


@pytest.fixture
def kube_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Clear every variable that configures the client or the URLs; return a scratch dir."""
    for name in _ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def start_cluster(
    kube_env: Path, monkeypatch: pytest.MonkeyPatch, api_usage: list[ApiCall]
) -> Iterator[StartCluster]:
    """Return a function starting an API double; all of them stop when the test ends."""
    tmp_path = kube_env
    counter = itertools.count()
    doubles: list[ApiDouble] = []

    with contextlib.ExitStack() as stack:

        def start(
            objects: list[dict[str, Any]] | None = None,
            *,
            rbac: Rbac | None = None,
            token: str | None = TOKEN,
            kubeconfig_token: str = TOKEN,
            stall: float = 0.0,
            replace_after: float = 0.3,
            ready_after: float = 0.3,
        ) -> Cluster:
            double = ApiDouble(token=token, rbac=rbac or shipped_rbac(), stall=stall)
            doubles.append(double)
            server = stack.enter_context(
                DoubleServer(
                    double,
                    seed.ha_sample() if objects is None else objects,
                    replace_after=replace_after,
                    ready_after=ready_after,
                )
            )
            path = write_kubeconfig(
                tmp_path / f"kubeconfig-{next(counter)}", server.url, kubeconfig_token
            )
            monkeypatch.setenv("KUBECONFIG", str(path))
            return Cluster(server, path)

        try:
            yield start
        finally:
            for double in doubles:
                api_usage.extend(double.calls)


@pytest.fixture
def ha(start_cluster: StartCluster) -> Cluster:
    """The KubeRay HA sample as KubeRay runs it, GCS fault tolerance by redisAddress."""
    return start_cluster()
