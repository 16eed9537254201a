"""How the Kubernetes client's errors become chaosraysvc errors (one per kind, chained)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaosraysvc.config import Settings
from chaosraysvc.errors import ConfigurationError, KubernetesApiError, NotFoundError, RefusedError
from chaosraysvc.kube.client import KubeApi, _Call, create_api_client, redact_url
from chaosraysvc.targets.kubernetes import KubernetesTarget

CALL = _Call("delete", "pods", "", "default", "rayservice-ha-k8xq2-head-7vqbn")


def _api() -> KubeApi:
    configuration = client.Configuration()
    configuration.host = "https://admin:pw@127.0.0.1:6443"
    return KubeApi(client.ApiClient(configuration), request_timeout=3)


def _raise(exc: BaseException) -> None:
    raise exc


def _status(code: int, message: str) -> ApiException:
    body = json.dumps({"kind": "Status", "code": code, "message": message})
    return ApiException(status=code, reason="x", body=body)


def test_the_host_is_shown_without_credentials() -> None:
    assert _api().host == "https://127.0.0.1:6443"
    assert redact_url("http://127.0.0.1:80") == "http://127.0.0.1:80"


def test_404_uses_the_hint_and_chains() -> None:
    with pytest.raises(NotFoundError, match="^pod gone$") as err:
        _api()._run(CALL, lambda: _raise(_status(404, "not found")), not_found="pod gone")
    assert isinstance(err.value.__cause__, ApiException)


def test_409_on_a_precondition_is_refused() -> None:
    with pytest.raises(RefusedError, match="replaced"):
        _api()._run(CALL, lambda: _raise(_status(409, "uid")), conflict="it was replaced")


def test_403_names_verb_resource_group_and_namespace() -> None:
    with pytest.raises(KubernetesApiError) as err:
        _api()._run(CALL, lambda: _raise(_status(403, 'pods "x" is forbidden')))
    message = str(err.value)
    assert (
        "may not 'delete' resource 'pods' (API group \"\" (core)) in namespace 'default'" in message
    )
    assert 'pods "x" is forbidden' in message
    assert (err.value.status, err.value.verb, err.value.resource) == (403, "delete", "pods")


def test_other_statuses_are_reported_with_the_servers_message() -> None:
    with pytest.raises(KubernetesApiError, match="answered 500.*etcdserver: timeout"):
        _api()._run(CALL, lambda: _raise(_status(500, "etcdserver: timeout")))


def test_a_tls_failure_points_at_certificates() -> None:
    with pytest.raises(KubernetesApiError, match="certificate"):
        _api()._run(CALL, lambda: _raise(ApiException(status=0, reason="SSLError: bad cert")))


def test_transport_errors_say_unreachable_or_timed_out() -> None:
    refused = urllib3.exceptions.MaxRetryError(
        None,
        "/",
        urllib3.exceptions.NewConnectionError(None, "Connection refused"),  # type: ignore[arg-type]
    )
    slow = urllib3.exceptions.MaxRetryError(
        None,
        "/",
        urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out"),  # type: ignore[arg-type]
    )
    with pytest.raises(KubernetesApiError, match="unreachable .connection refused."):
        _api()._run(CALL, lambda: _raise(refused))
    with pytest.raises(KubernetesApiError, match="did not answer within 3 s"):
        _api()._run(CALL, lambda: _raise(slow))


@pytest.fixture
def no_kube_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME without ~/.kube/config, and none of the variables that configure the client."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("KUBECONFIG", "KUBERNETES_HOST", "CHAOSTOOLKIT_IN_POD", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_no_kubeconfig_names_what_was_checked_and_what_to_do(no_kube_config: Path) -> None:
    target = KubernetesTarget(Settings(target="kubernetes"))

    with pytest.raises(ConfigurationError) as err:
        target.pods()

    message = str(err.value)
    assert "no Kubernetes configuration found" in message
    assert "$KUBECONFIG (not set)" in message
    assert f"{no_kube_config}/.kube/config (no such file)" in message
    assert "not in a pod" in message
    assert "CHAOSTOOLKIT_IN_POD=true" in message
    assert "localhost" not in message and "unreachable" not in message


def test_a_kubeconfig_path_that_does_not_exist_is_named(
    no_kube_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(no_kube_config / "nope.yaml"))

    with pytest.raises(ConfigurationError, match=r"\$KUBECONFIG=.*nope.yaml \(no such file\)"):
        create_api_client()
