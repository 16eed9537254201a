"""Where the RayService's Serve and dashboard answer: resolved here, and only here.

The dashboard, first match wins:

1. `dashboard_url` (or `$RAYSVC_DASHBOARD_URL`) when set, reached directly;
2. inside the cluster (`CHAOSTOOLKIT_IN_POD=true`, as for chaostoolkit-kubernetes), the head
   Service's DNS name `http://<name>-head-svc.<namespace>.svc.cluster.local:8265`;
3. outside it, the API server's service proxy of the head Service,
   `<api server>/api/v1/namespaces/<namespace>/services/<name>-head-svc:dashboard/proxy/`,
   with the Kubernetes client's credentials (RBAC `get` on `services/proxy`). The API server
   picks a ready endpoint of the Service per request, so the reads follow the head when
   KubeRay replaces it; no port-forward.

Serve (the traffic): `serve_url` when set, else inside the cluster the serve Service's DNS
name `http://<name>-serve-svc.<namespace>.svc.cluster.local:8000`. Outside the cluster with
no `serve_url` it is refused, not proxied: the API server's proxy is not the Service's data
path (the API server dials one endpoint itself, and adds its own latency, rate limits and
load to every request), so the traffic would measure the API server, not what users see.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from chaosraysvc.config import Settings
from chaosraysvc.errors import ConfigurationError
from chaosraysvc.kube.client import KubeApi
from chaosraysvc.kube.proxy import DASHBOARD_PORT_NAME, ApiServerProxyDashboard, head_service_name
from chaosraysvc.serve.dashboard import Dashboard

__all__ = ["dashboard", "in_cluster", "serve_url"]

logger = logging.getLogger("chaostoolkit")

SERVE_PORT = 8000
DASHBOARD_PORT = 8265


def in_cluster() -> bool:
    """Return whether chaosraysvc runs in a pod (`CHAOSTOOLKIT_IN_POD=true`)."""
    return os.environ.get("CHAOSTOOLKIT_IN_POD", "").strip().lower() == "true"


def _service_url(settings: Settings, suffix: str, port: int) -> str:
    name, namespace = settings.rayservice_name, settings.rayservice_namespace
    return f"http://{name}-{suffix}.{namespace}.svc.cluster.local:{port}"


def serve_url(settings: Settings) -> str:
    """Return the serve Service's base URL (no trailing slash).

    Raises `ConfigurationError` outside the cluster when `serve_url` is not set, saying
    how to set it and why the API server's proxy is not used for traffic.
    """
    if settings.serve_url:
        return settings.serve_url.rstrip("/")
    if in_cluster():
        return _service_url(settings, "serve-svc", SERVE_PORT)
    name, namespace = settings.rayservice_name, settings.rayservice_namespace
    raise ConfigurationError(
        f"serve_url is not set and chaosraysvc does not run inside the cluster "
        f"(CHAOSTOOLKIT_IN_POD is not 'true'), so Service {name}-serve-svc cannot be reached "
        f"by its cluster DNS name. Either run `kubectl port-forward -n {namespace} "
        f"svc/{name}-serve-svc {SERVE_PORT}:{SERVE_PORT}` (it holds on to one pod: pick a "
        "worker's for a head-kill) and set configuration 'serve_url' (or $RAYSVC_SERVE_URL) "
        f"to http://127.0.0.1:{SERVE_PORT}, or run the experiment in the cluster (the "
        "CronJob in deploy/), where the traffic goes through the Service as users' does. "
        "The traffic is not sent through the API server's service proxy: that would measure "
        "the API server, not the Service"
    )


def dashboard(settings: Settings, api: Callable[[], KubeApi]) -> Dashboard:
    """Return the Ray dashboard of `settings`' RayService and how to reach it.

    `api` gives the Kubernetes client, called only when the API server's service proxy is
    the route. Logs which route was chosen. Raises `ConfigurationError` when the proxy is
    needed and no Kubernetes configuration is found.
    """
    name, namespace = settings.rayservice_name, settings.rayservice_namespace
    found: Dashboard
    if settings.dashboard_url:
        found = Dashboard(settings.dashboard_url, route="dashboard_url")
    elif in_cluster():
        found = Dashboard(
            _service_url(settings, "head-svc", DASHBOARD_PORT),
            route="the head Service's cluster DNS name (CHAOSTOOLKIT_IN_POD=true)",
        )
    else:
        found = ApiServerProxyDashboard(
            api(),
            namespace,
            head_service_name(name),
            DASHBOARD_PORT_NAME,
            route="the API server's service proxy of the head Service (no dashboard_url "
            "set, not in the cluster)",
        )
    logger.info("Ray dashboard of RayService %s/%s: %s", namespace, name, found.describe())
    return found
