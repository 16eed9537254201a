"""Ray nodes as the dashboard sees them, to tell which pod a Serve replica runs in."""

from __future__ import annotations

from dataclasses import dataclass

import requests

from chaosraysvc.errors import ServeApiError


@dataclass(frozen=True)
class RayNode:
    node_id: str
    ip: str
    node_manager_port: int
    is_head: bool
    alive: bool


def list_nodes(dashboard_url: str, timeout: float = 3.0) -> list[RayNode]:
    """Return the cluster's nodes from `GET /nodes?view=summary` on the dashboard."""
    url = dashboard_url.rstrip("/") + "/nodes"
    try:
        response = requests.get(url, params={"view": "summary"}, timeout=timeout)
        response.raise_for_status()
        summary = response.json()["data"]["summary"]
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        raise ServeApiError(
            f"cannot list Ray nodes from the dashboard at {dashboard_url}: {exc}"
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
