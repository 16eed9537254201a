"""Errors say what was looked for, where, and what to do; the client's error is chained."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes.client.exceptions import ApiException

from chaosraysvc.errors import (
    ConfigurationError,
    KubernetesApiError,
    NotFoundError,
    TargetNotReadyError,
)

from . import seed
from .conftest import Cluster, StartCluster, shipped_rbac
from .server import TOKEN, free_port, write_kubeconfig


def test_a_missing_rayservice_is_named_with_its_namespace(ha: Cluster) -> None:
    target = ha.target(rayservice_name="rayservice-nope")

    with pytest.raises(NotFoundError) as err:
        target.pods()

    message = str(err.value)
    assert "RayService 'rayservice-nope' not found in namespace 'default'" in message
    assert "rayservice_name" in message
    assert isinstance(err.value.__cause__, ApiException) and err.value.__cause__.status == 404
    assert "error" in target.describe()


def test_a_rayservice_without_an_active_cluster_is_not_ready(start_cluster: StartCluster) -> None:
    target = start_cluster(seed.ha_sample(active=False)).target()

    with pytest.raises(TargetNotReadyError, match="no active RayCluster yet") as err:
        target.pods()
    assert f"RayCluster '{seed.CLUSTER}' is still being prepared" in str(err.value)


def test_an_unreachable_api_names_the_host(kube_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(kube_env / "kubeconfig", url)))
    target = Cluster.target(None, request_timeout=2.0)  # type: ignore[arg-type]

    with pytest.raises(KubernetesApiError, match="unreachable") as err:
        target.pods()

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
        Cluster.target(None).pods()  # type: ignore[arg-type]


def test_rejected_credentials_answer_401(start_cluster: StartCluster) -> None:
    cluster = start_cluster(kubeconfig_token="expired-token")

    with pytest.raises(KubernetesApiError, match="401 Unauthorized") as err:
        cluster.target().pods()

    assert err.value.status == 401
    assert "token" in str(err.value) and "expired-token" not in str(err.value)
    assert TOKEN not in str(err.value)


def test_a_role_without_delete_on_pods_is_named(start_cluster: StartCluster) -> None:
    cluster = start_cluster(rbac=shipped_rbac().without("delete", "", "pods"))
    target = cluster.target()
    head = target.pods()[0]

    with pytest.raises(KubernetesApiError) as err:
        target.delete_pod(head)

    assert (err.value.status, err.value.verb, err.value.resource) == (403, "delete", "pods")
    message = str(err.value)
    assert "may not 'delete' resource 'pods'" in message
    assert "namespace 'default'" in message and "Role" in message
    assert 'cannot delete resource "pods"' in message  # what the API server said
    assert head.name in cluster.pod_names()


def test_a_role_without_list_on_endpointslices_is_named(start_cluster: StartCluster) -> None:
    cluster = start_cluster(
        rbac=shipped_rbac().without("list", "discovery.k8s.io", "endpointslices")
    )

    with pytest.raises(KubernetesApiError) as err:
        cluster.target().serve_endpoints()

    assert (err.value.status, err.value.verb) == (403, "list")
    assert "'endpointslices' (API group discovery.k8s.io)" in str(err.value)


def test_a_slow_api_times_out(start_cluster: StartCluster) -> None:
    cluster = start_cluster(stall=1.0)

    with pytest.raises(KubernetesApiError, match=r"did not answer within 0\.2 s") as err:
        cluster.target(request_timeout=0.2).pods()
    assert cluster.server.url in str(err.value)
