"""Errors say what was looked for, where, and what to do; the client's error is chained.

Against the real API server: its 401 for a token it does not know, and a kubeconfig whose
server is gone. A missing RayService, one mid-upgrade and the 403s of the RBAC authorizer are
in `test_real_target.py` and `test_real_rbac.py`; a stalled API in `faults/`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes.client.exceptions import ApiException

from chaosraysvc.config import Settings
from chaosraysvc.errors import ConfigurationError, KubernetesApiError
from chaosraysvc.runtime.ports import free_port
from chaosraysvc.targets.kubernetes import KubernetesTarget
from chaosraysvc_lab import kubeconfig

from .conftest import RealPlane, SeedCluster

pytestmark = pytest.mark.apiserver


def test_a_token_the_server_does_not_know_answers_401_without_showing_it(
    seed_cluster: SeedCluster, kube_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = seed_cluster(wait_slices=False)
    token = "expired-token-3f9a"
    monkeypatch.setenv(
        "KUBECONFIG", str(cluster.kubeconfig_with_token(kube_env / "bad.kubeconfig", token))
    )

    with pytest.raises(KubernetesApiError, match="401 Unauthorized") as err:
        cluster.target().pods()

    assert err.value.status == 401
    assert "token" in str(err.value) and token not in str(err.value)
    assert isinstance(err.value.__cause__, ApiException)


def _target(request_timeout: float = 5.0) -> KubernetesTarget:
    return KubernetesTarget(Settings(target="kubernetes"), request_timeout=request_timeout)


def test_an_unreachable_api_names_the_host(
    real_plane: RealPlane, kube_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"https://127.0.0.1:{free_port()}"  # the real server's CA, but nothing listens there
    path = kubeconfig.write(
        kube_env / "gone.kubeconfig", server=url, ca=real_plane.plane.pki_dir / "ca.crt"
    )
    monkeypatch.setenv("KUBECONFIG", str(path))

    with pytest.raises(KubernetesApiError, match="unreachable") as err:
        _target(request_timeout=2.0).pods()

    assert url in str(err.value)
    assert "KUBECONFIG" in str(err.value)
    assert err.value.status is None


def test_a_broken_kubeconfig_is_a_configuration_error(
    kube_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = kube_env / "kubeconfig"
    path.write_text("apiVersion: v1\nkind: Config\ncurrent-context: missing\n")
    monkeypatch.setenv("KUBECONFIG", str(path))

    with pytest.raises(ConfigurationError, match="KUBECONFIG"):
        _target().pods()
