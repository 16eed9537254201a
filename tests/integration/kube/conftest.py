"""Fixtures shared by the Kubernetes target's tests: a clean client environment.

The tests run against the real control plane (`real/`); the few faults a real API server
cannot produce on demand run against the HTTP-level double in `faults/`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

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
    "RAYSVC_TARGET",
    "RAYSVC_NAME",
    "RAYSVC_NAMESPACE",
    "RAYSVC_SERVE_URL",
    "RAYSVC_DASHBOARD_URL",
    "RAYSVC_REDIS_LABEL_SELECTOR",
)


@pytest.fixture
def kube_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Clear every variable that configures the client or the URLs; return a scratch dir."""
    for name in _ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    return tmp_path
