"""Read and write Ray Serve state through the dashboard's REST API.

`GET <dashboard>/api/serve/applications/` gives applications, deployments,
replicas (with their node) and proxies; `PUT` deploys a declarative config. The
dashboard runs on the head: during a head outage these calls fail with
`ServeApiError`, which callers treat as "unknown", never as "healthy".
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import requests

from chaosraysvc.errors import ServeApiError

APPLICATIONS_PATH = "/api/serve/applications/"


def get_serve_details(dashboard_url: str, timeout: float = 3.0) -> dict[str, Any]:
    """Return the Serve details document from the dashboard at `dashboard_url`.

    Raises `ServeApiError` when the dashboard cannot be reached or answers badly.
    """
    url = dashboard_url.rstrip("/") + APPLICATIONS_PATH
    try:
        response = requests.get(url, params={"api_type": "declarative"}, timeout=timeout)
    except requests.RequestException as exc:
        raise ServeApiError(
            f"Ray dashboard at {dashboard_url} is unreachable ({type(exc).__name__}); "
            "is the head pod up? Set dashboard_url if it lives elsewhere"
        ) from exc
    if response.status_code != 200:
        raise ServeApiError(
            f"Ray dashboard at {dashboard_url} answered {response.status_code} to GET "
            f"{APPLICATIONS_PATH}: {response.text[:200]}"
        )
    try:
        details = response.json()
    except ValueError as exc:
        raise ServeApiError(f"Ray dashboard at {dashboard_url} sent invalid JSON") from exc
    if not isinstance(details, dict):
        raise ServeApiError(f"Ray dashboard at {dashboard_url} sent an unexpected document")
    return details


def deploy_config(dashboard_url: str, config: dict[str, Any], timeout: float = 10.0) -> None:
    """Deploy a declarative Serve `config` through the dashboard (PUT)."""
    url = dashboard_url.rstrip("/") + APPLICATIONS_PATH
    try:
        response = requests.put(url, json=config, timeout=timeout)
    except requests.RequestException as exc:
        raise ServeApiError(f"cannot deploy Serve config to {dashboard_url}: {exc}") from exc
    if response.status_code != 200:
        raise ServeApiError(
            f"Ray dashboard at {dashboard_url} refused the Serve config "
            f"({response.status_code}): {response.text[:300]}"
        )


def application_statuses(details: dict[str, Any]) -> dict[str, str]:
    """Return {application name: status} (RUNNING, DEPLOYING, UNHEALTHY, ...)."""
    apps = details.get("applications") or {}
    return {name: str(app.get("status", "UNKNOWN")) for name, app in apps.items()}


def application_messages(details: dict[str, Any]) -> dict[str, str]:
    """Return {application name: status message} for applications that have one."""
    apps = details.get("applications") or {}
    return {name: str(app["message"]) for name, app in apps.items() if app.get("message")}


def proxy_statuses(details: dict[str, Any]) -> dict[str, str]:
    """Return {node id: proxy status} (HEALTHY, UNHEALTHY, DRAINING, STARTING)."""
    proxies = details.get("proxies") or {}
    return {node: str(p.get("status", "UNKNOWN")) for node, p in proxies.items()}


def replica_placement(details: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """Return {node id: {"app/deployment": [replica ids]}}; unplaced replicas under "".

    Only replicas in state RUNNING or STARTING are counted.
    """
    placement: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for app_name, app in (details.get("applications") or {}).items():
        for dep_name, dep in (app.get("deployments") or {}).items():
            for replica in dep.get("replicas") or []:
                if replica.get("state") not in ("RUNNING", "STARTING"):
                    continue
                node = replica.get("node_id") or ""
                placement[node][f"{app_name}/{dep_name}"].append(str(replica.get("replica_id")))
    return {node: dict(deps) for node, deps in placement.items()}


def replica_ids(details: dict[str, Any]) -> set[str]:
    """Return the ids of every RUNNING replica."""
    return {
        rid for deps in replica_placement(details).values() for ids in deps.values() for rid in ids
    }
