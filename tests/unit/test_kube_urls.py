"""Serve and dashboard URLs of the kubernetes target."""

from __future__ import annotations

import pytest

from chaosraysvc.config import Settings
from chaosraysvc.errors import ConfigurationError
from chaosraysvc.targets.kubernetes import KubernetesTarget

SETTINGS = Settings(target="kubernetes", rayservice_name="rayservice-ha", rayservice_namespace="ml")


def test_overrides_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSTOOLKIT_IN_POD", "true")
    settings = Settings(
        target="kubernetes",
        serve_url="http://127.0.0.1:8000/",
        dashboard_url="http://127.0.0.1:8265",
    )
    target = KubernetesTarget(settings)

    assert target.serve_url() == "http://127.0.0.1:8000"
    assert target.dashboard_url() == "http://127.0.0.1:8265"


def test_in_cluster_urls_are_the_rayservice_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSTOOLKIT_IN_POD", "true")
    target = KubernetesTarget(SETTINGS)

    assert target.serve_url() == "http://rayservice-ha-serve-svc.ml.svc.cluster.local:8000"
    assert target.dashboard_url() == "http://rayservice-ha-head-svc.ml.svc.cluster.local:8265"


def test_outside_the_cluster_without_overrides_says_to_port_forward(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CHAOSTOOLKIT_IN_POD", raising=False)
    target = KubernetesTarget(SETTINGS)

    with pytest.raises(ConfigurationError) as serve:
        target.serve_url()
    with pytest.raises(ConfigurationError) as dashboard:
        target.dashboard_url()

    assert "kubectl port-forward -n ml svc/rayservice-ha-serve-svc 8000:8000" in str(serve.value)
    assert "serve_url" in str(serve.value) and "RAYSVC_SERVE_URL" in str(serve.value)
    assert "svc/rayservice-ha-head-svc 8265:8265" in str(dashboard.value)
    assert "dashboard_url" in str(dashboard.value)
