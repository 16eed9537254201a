"""What the Ray dashboard says about Serve right now: replica placement, proxies, deployments.

Used by both targets' `ha_facts()` when a dashboard is reachable; `read_live` raises `ServeApiError`
otherwise and the gatherers record a note instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaosraysvc.model.ha import DeploymentFacts, HaFacts, Placement
from chaosraysvc.serve import nodes, rest
from chaosraysvc.serve.dashboard import Dashboard, as_dashboard

__all__ = ["LiveServe", "apply_live", "read_live"]

PodNamer = Callable[[Sequence[nodes.RayNode]], dict[str, str]]  # a target's `pod_names`


@dataclass
class LiveServe:
    """The dashboard's view of Serve, with Ray nodes named as pods."""

    source: str
    proxy_location: str = ""
    head_proxy_status: str = ""  # "" when no proxy runs on the head
    head_pods: list[str] = field(default_factory=list)
    placement: dict[str, Placement] = field(default_factory=dict)  # "app/dep" -> placement
    deployments: list[DeploymentFacts] = field(default_factory=list)


def read_live(dashboard: Dashboard | str, pod_names: PodNamer, timeout: float = 3.0) -> LiveServe:
    """Return the live Serve state from `dashboard` (a `Dashboard` or its URL).

    `pod_names` names the pod of each Ray node by node id ("" when unknown: the node id is
    used). Raises `ServeApiError` when the dashboard cannot be read.
    """
    dashboard = as_dashboard(dashboard)
    details = rest.get_serve_details(dashboard, timeout=timeout)
    ray_nodes = [n for n in nodes.list_nodes(dashboard, timeout=timeout) if n.alive]
    pods = pod_names(ray_nodes)
    names = {n.node_id: (pods.get(n.node_id) or n.node_id[:12]) for n in ray_nodes}
    heads = {n.node_id for n in ray_nodes if n.is_head}
    live = LiveServe(
        source=f"dashboard {dashboard}",
        proxy_location=str(details.get("proxy_location") or ""),
        head_pods=sorted(names[n] for n in heads),
    )
    proxies = rest.proxy_statuses(details)
    live.head_proxy_status = next((proxies[n] for n in heads if n in proxies), "")
    placement = rest.replica_placement(details)
    for node_id, deps in placement.items():
        for key, ids in deps.items():
            spot = live.placement.setdefault(key, Placement())
            if not node_id:
                spot.unplaced += len(ids)
                continue
            pod = names.get(node_id, node_id[:12])
            spot.per_pod[pod] = spot.per_pod.get(pod, 0) + len(ids)
            if node_id in heads:
                spot.on_head += len(ids)
    for app_name, app in (details.get("applications") or {}).items():
        for dep_name, dep in (app.get("deployments") or {}).items():
            live.deployments.append(_deployment(app_name, dep_name, dep, live.source))
            live.placement.setdefault(f"{app_name}/{dep_name}", Placement())
    return live


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _deployment(app: str, name: str, dep: dict[str, Any], source: str) -> DeploymentFacts:
    config = dep.get("deployment_config") or {}
    auto = config.get("autoscaling_config")
    num = _int(config.get("num_replicas"))
    facts = DeploymentFacts(
        app=app,
        name=name,
        num_replicas=num if num is not None else _int(dep.get("target_num_replicas")),
        max_replicas_per_node=_int(config.get("max_replicas_per_node")),
        source=f"{source}: deployment_config",
    )
    if isinstance(auto, dict):
        facts.autoscaling = True
        facts.num_replicas = None
        facts.min_replicas = _int(auto.get("min_replicas"))
    return facts


def apply_live(facts: HaFacts, live: LiveServe) -> None:
    """Add the live placement to `facts`, and the deployments only the dashboard knows."""
    facts.placement_source = live.source
    known = {d.key for d in facts.deployments}
    facts.deployments += [d for d in live.deployments if d.key not in known]
    for dep in facts.deployments:
        dep.placement = live.placement.get(dep.key, Placement())
    if live.proxy_location:
        facts.proxy_location = live.proxy_location
    if live.head_proxy_status:
        facts.head_proxy_running = True
        facts.head_proxy_evidence = (
            f"a Serve proxy runs on the head pod {', '.join(live.head_pods)} "
            f"({live.head_proxy_status}, {live.source})"
        )
    elif live.head_pods:
        facts.head_proxy_running = False
        facts.head_proxy_evidence = (
            f"no Serve proxy on the head pod {', '.join(live.head_pods)} ({live.source})"
        )
