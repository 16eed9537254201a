"""Where the RayService's Serve and dashboard answer.

Inside the cluster (`CHAOSTOOLKIT_IN_POD=true`, as for chaostoolkit-kubernetes) the URLs are
the Services KubeRay creates for the RayService:
`http://<name>-serve-svc.<namespace>.svc.cluster.local:8000` and
`http://<name>-head-svc.<namespace>.svc.cluster.local:8265`. Outside it, the user sets
`serve_url` / `dashboard_url` (typically to a `kubectl port-forward`).
"""

from __future__ import annotations

import os

from chaosraysvc.config import Settings
from chaosraysvc.errors import ConfigurationError

__all__ = ["dashboard_url", "in_cluster", "serve_url"]

SERVE_PORT = 8000
DASHBOARD_PORT = 8265


def in_cluster() -> bool:
    """Return whether chaosraysvc runs in a pod (`CHAOSTOOLKIT_IN_POD=true`)."""
    return os.environ.get("CHAOSTOOLKIT_IN_POD", "").strip().lower() == "true"


def _service_url(settings: Settings, suffix: str, port: int) -> str:
    name, namespace = settings.rayservice_name, settings.rayservice_namespace
    return f"http://{name}-{suffix}.{namespace}.svc.cluster.local:{port}"


def _outside(settings: Settings, key: str, env: str, suffix: str, port: int) -> ConfigurationError:
    name, namespace = settings.rayservice_name, settings.rayservice_namespace
    return ConfigurationError(
        f"{key} is not set and chaosraysvc does not run inside the cluster "
        f"(CHAOSTOOLKIT_IN_POD is not 'true'), so Service {name}-{suffix} cannot be reached "
        f"by its cluster DNS name: run `kubectl port-forward -n {namespace} "
        f"svc/{name}-{suffix} {port}:{port}` and set configuration '{key}' (or ${env}) to "
        f"http://127.0.0.1:{port}"
    )


def serve_url(settings: Settings) -> str:
    """Return the serve Service's base URL (no trailing slash).

    Raises `ConfigurationError` outside the cluster when `serve_url` is not set.
    """
    if settings.serve_url:
        return settings.serve_url.rstrip("/")
    if in_cluster():
        return _service_url(settings, "serve-svc", SERVE_PORT)
    raise _outside(settings, "serve_url", "RAYSVC_SERVE_URL", "serve-svc", SERVE_PORT)


def dashboard_url(settings: Settings) -> str:
    """Return the Ray dashboard's base URL (no trailing slash).

    Raises `ConfigurationError` outside the cluster when `dashboard_url` is not set.
    """
    if settings.dashboard_url:
        return settings.dashboard_url.rstrip("/")
    if in_cluster():
        return _service_url(settings, "head-svc", DASHBOARD_PORT)
    raise _outside(settings, "dashboard_url", "RAYSVC_DASHBOARD_URL", "head-svc", DASHBOARD_PORT)
