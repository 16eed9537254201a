"""Ray nodes as the dashboard sees them, to tell which pod a Serve replica runs in."""

from __future__ import annotations

from dataclasses import dataclass

from chaosraysvc.errors import ServeApiError
from chaosraysvc.serve.dashboard import Dashboard, as_dashboard


@dataclass(frozen=True)
class RayNode:
    node_id: str
    ip: str
    node_manager_port: int
    is_head: bool
    alive: bool


def list_nodes(dashboard: Dashboard | str, timeout: float = 3.0) -> list[RayNode]:
    """Return the cluster's nodes from `GET /nodes?view=summary` on `dashboard`.

    Raises `ServeApiError` when the dashboard cannot be reached or answers badly.
    """
    dashboard = as_dashboard(dashboard)
    answer = dashboard.request("GET", "/nodes", params={"view": "summary"}, timeout=timeout)
    if answer.status != 200:
        raise ServeApiError(
            f"cannot list Ray nodes from the dashboard at {dashboard}: it answered "
            f"{answer.status} to GET /nodes: {answer.text[:200]}"
        )
    try:
        summary = answer.json()["data"]["summary"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ServeApiError(
            f"cannot list Ray nodes from the dashboard at {dashboard}: {exc!r}"
        ) from exc
    nodes = []
    for item in summary:
        raylet = item.get("raylet") or {}
        nodes.append(
            RayNode(
                node_id=str(raylet.get("nodeId", "")),
                ip=str(item.get("ip") or raylet.get("nodeManagerAddress") or ""),
                node_manager_port=int(raylet.get("nodeManagerPort") or 0),
                is_head=bool(raylet.get("isHeadNode")),
                alive=raylet.get("state") == "ALIVE",
            )
        )
    return nodes
