"""Where the Ray dashboard answers, and how a request gets there.

A `Dashboard` is a base URL and a route: `direct` (a configured `dashboard_url`, the
sandbox's port, or the head Service's cluster DNS name inside the cluster) sends plain HTTP
with `requests`; the kubernetes target's route through the API server's service proxy
(`chaosraysvc.kube.proxy.ApiServerProxyDashboard`) sends the same requests with the
Kubernetes client's own connection, TLS and credentials. The Serve REST calls
(`serve.rest`, `serve.nodes`) take a `Dashboard` (or a plain URL) and never know which.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from chaosraysvc.errors import ServeApiError

__all__ = ["Answer", "Dashboard", "as_dashboard"]


@dataclass(frozen=True)
class Answer:
    """One HTTP answer of the dashboard (or of what stands in front of it)."""

    status: int
    text: str

    def json(self) -> Any:
        """Return the body as JSON; raises `ValueError` when it is not."""
        return json.loads(self.text)


class Dashboard:
    """The Ray dashboard at `url` (no trailing slash), reached directly over HTTP.

    `route` says how it was found, for logs and messages (e.g. "dashboard_url").
    """

    via = "direct"

    def __init__(self, url: str, route: str = "") -> None:
        self.url = url.rstrip("/")
        self.route = route

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, route={self.route!r})"

    def describe(self) -> str:
        """Return where the dashboard is and how it is reached, for logs (no secrets)."""
        return f"{self.url} ({self.route or self.via})"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        timeout: float = 3.0,
    ) -> Answer:
        """Send `method path` (path from the dashboard's root) and return the answer.

        Any HTTP status is returned; raises `ServeApiError` when no answer came (refused,
        timed out, TLS), naming the dashboard and the error's kind.
        """
        try:
            response = requests.request(
                method,
                self.url + path,
                params=dict(params or {}),
                json=body,
                timeout=timeout,
            )
        except requests.RequestException as exc:
            raise ServeApiError(
                f"Ray dashboard at {self.url} is unreachable ({type(exc).__name__}); "
                "is the head pod up? Set dashboard_url if it lives elsewhere"
            ) from exc
        return Answer(response.status_code, response.text)

    def close(self) -> None:
        """Release what the route holds (nothing for direct HTTP)."""


def as_dashboard(dashboard: Dashboard | str) -> Dashboard:
    """Return `dashboard`, or a direct `Dashboard` at that URL."""
    return dashboard if isinstance(dashboard, Dashboard) else Dashboard(dashboard)
