"""The Ray dashboard through the Kubernetes API server's service proxy.

Outside the cluster, with no `dashboard_url`, the kubernetes target reads the dashboard at
`<api server>/api/v1/namespaces/<namespace>/services/<name>-head-svc:dashboard/proxy/`:
the API server picks a ready endpoint of the head Service on each request, so the reads
follow the head when KubeRay replaces it, and they go with the Kubernetes client's own
connection, TLS and credentials (RBAC: `get` on `services/proxy`, in deploy/role.yaml).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaosraysvc.kube.client import KubeApi
from chaosraysvc.serve.dashboard import Answer, Dashboard

__all__ = ["DASHBOARD_PORT_NAME", "ApiServerProxyDashboard", "head_service_name"]

# The name KubeRay gives the dashboard port (8265) of a RayCluster's head Service.
DASHBOARD_PORT_NAME = "dashboard"


def head_service_name(rayservice: str) -> str:
    """Return the name KubeRay gives the RayService's head Service."""
    return f"{rayservice}-head-svc"


class ApiServerProxyDashboard(Dashboard):
    """The dashboard behind Service `service` port `port`, reached through the API server."""

    via = "the API server's service proxy"

    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        service: str,
        port: str = DASHBOARD_PORT_NAME,
        route: str = "",
    ) -> None:
        super().__init__(api.service_proxy_url(namespace, service, port), route)
        self._api = api
        self.namespace = namespace
        self.service = service
        self.port = port

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        timeout: float = 3.0,
    ) -> Answer:
        """Send `method path` through the API server's service proxy; return the answer.

        Raises `KubernetesApiError` when the API server refuses the request (401, 403
        naming `services/proxy`) or cannot be reached, `ServeApiError` when no answer came
        within `timeout` seconds.
        """
        status, text = self._api.proxy_request(
            self.namespace,
            self.service,
            self.port,
            method,
            path,
            params=params,
            body=body,
            timeout=timeout,
        )
        return Answer(status, text)
