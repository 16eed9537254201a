"""Read and write Ray Serve state through the dashboard's REST API.

`GET <dashboard>/api/serve/applications/` gives applications, deployments,
replicas (with their node) and proxies; `PUT` deploys a declarative config. The
dashboard runs on the head: during a head outage these calls fail with
`ServeApiError`, which callers treat as "unknown", never as "healthy".
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from chaosraysvc.errors import ServeApiError
from chaosraysvc.serve.dashboard import Dashboard, as_dashboard

APPLICATIONS_PATH = "/api/serve/applications/"


def get_serve_details(dashboard: Dashboard | str, timeout: float = 3.0) -> dict[str, Any]:
    """Return the Serve details document from `dashboard` (a `Dashboard` or its URL).

    Raises `ServeApiError` when the dashboard cannot be reached or answers badly.
    """
    dashboard = as_dashboard(dashboard)
    answer = dashboard.request(
        "GET", APPLICATIONS_PATH, params={"api_type": "declarative"}, timeout=timeout
    )
    if answer.status != 200:
        raise ServeApiError(
            f"Ray dashboard at {dashboard} answered {answer.status} to GET "
            f"{APPLICATIONS_PATH}: {answer.text[:200]}"
        )
    try:
        details = answer.json()
    except ValueError as exc:
        raise ServeApiError(f"Ray dashboard at {dashboard} sent invalid JSON") from exc
    if not isinstance(details, dict):
        raise ServeApiError(f"Ray dashboard at {dashboard} sent an unexpected document")
    return details


def deploy_config(
    dashboard: Dashboard | str, config: dict[str, Any], timeout: float = 10.0
) -> None:
    """Deploy a declarative Serve `config` through the dashboard (PUT)."""
    dashboard = as_dashboard(dashboard)
    answer = dashboard.request("PUT", APPLICATIONS_PATH, body=config, timeout=timeout)
    if answer.status != 200:
        raise ServeApiError(
            f"Ray dashboard at {dashboard} refused the Serve config "
            f"({answer.status}): {answer.text[:300]}"
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
