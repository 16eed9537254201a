"""Probes of the Serve side of a RayService: endpoints, applications, proxies, replicas.

::

    {"type": "probe", "name": "serve-endpoints",
     "provider": {"type": "python", "module": "chaosraysvc.activities.serve_probes",
                  "func": "serve_endpoint_count"},
     "tolerance": 3}
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaosraysvc.activities.common import activity_errors, target_for
from chaosraysvc.config import number
from chaosraysvc.serve import nodes, rest
from chaosraysvc.targets.base import Target, ready_endpoint_count

__all__ = [
    "serve_applications_healthy",
    "serve_endpoint_count",
    "serve_proxies_healthy",
    "serve_replica_placement",
    "serve_replicas_spread",
]
logger = logging.getLogger("chaostoolkit")


def serve_endpoint_count(
    configuration: Configuration | None = None, secrets: Secrets | None = None
) -> int:
    """Count the ready endpoints behind the RayService's serve Service.

    On Kubernetes these are the ready addresses of the EndpointSlices of
    `<name>-serve-svc`; on the sandbox, the nodes whose proxy listens on the serve port.
    Raises `ActivityFailed` when the target cannot be reached.
    """
    target = target_for(configuration, secrets)
    with activity_errors():
        return ready_endpoint_count(target)


def serve_applications_healthy(
    app: str = "", configuration: Configuration | None = None, secrets: Secrets | None = None
) -> bool:
    """Tell whether every Serve application (or only `app`) is RUNNING.

    Reads the dashboard's Serve REST API. Returns False when an application is not
    RUNNING or `app` does not exist. Raises `ActivityFailed` when the dashboard cannot be
    reached (during a head outage the state is unknown, which fails the hypothesis too).
    """
    target = target_for(configuration, secrets)
    with activity_errors():
        statuses = rest.application_statuses(rest.get_serve_details(target.dashboard()))
    if app:
        logger.info("Serve application %s: %s", app, statuses.get(app, "absent"))
        return statuses.get(app) == "RUNNING"
    logger.info("Serve applications: %s", statuses or "none")
    return bool(statuses) and all(s == "RUNNING" for s in statuses.values())


def serve_proxies_healthy(
    configuration: Configuration | None = None, secrets: Secrets | None = None
) -> bool:
    """Tell whether every Serve proxy is HEALTHY and every live Ray node has one.

    Raises `ActivityFailed` when the dashboard cannot be reached.
    """
    target = target_for(configuration, secrets)
    with activity_errors():
        details = rest.get_serve_details(target.dashboard())
        alive = {n.node_id for n in nodes.list_nodes(target.dashboard()) if n.alive}
    proxies = rest.proxy_statuses(details)
    unhealthy = {n: s for n, s in proxies.items() if s != "HEALTHY"}
    missing = alive - set(proxies)
    if unhealthy or missing:
        logger.info("Serve proxies not healthy: %s; nodes without one: %s", unhealthy, missing)
    return bool(proxies) and not unhealthy and not missing


def _pod_names(target: Target, ray_nodes: list[nodes.RayNode]) -> dict[str, str]:
    """Map Ray node ids to pod names (the target's mapping; the node id's prefix when unknown)."""
    known = target.pod_names(ray_nodes)
    return {n.node_id: known.get(n.node_id) or n.node_id[:12] for n in ray_nodes}


def serve_replica_placement(
    configuration: Configuration | None = None, secrets: Secrets | None = None
) -> dict[str, Any]:
    """Return where Serve replicas run: per pod, the replica count of each deployment.

    The result is `{"nodes": {pod: {"role": "head"|"worker", "replicas": {"app/deployment":
    n}}}, "unplaced": {"app/deployment": n}}`. Raises `ActivityFailed` when the dashboard
    cannot be reached.
    """
    target = target_for(configuration, secrets)
    with activity_errors():
        details = rest.get_serve_details(target.dashboard())
        ray_nodes = nodes.list_nodes(target.dashboard())
        names = _pod_names(target, ray_nodes)
    heads = {n.node_id for n in ray_nodes if n.is_head}
    placement = rest.replica_placement(details)
    result: dict[str, Any] = {"nodes": {}, "unplaced": {}}
    for node in ray_nodes:
        if not node.alive:
            continue
        replicas = {dep: len(ids) for dep, ids in placement.get(node.node_id, {}).items()}
        role = "head" if node.node_id in heads else "worker"
        result["nodes"][names[node.node_id]] = {"role": role, "replicas": replicas}
    result["unplaced"] = {dep: len(ids) for dep, ids in placement.get("", {}).items()}
    return result


def serve_replicas_spread(
    max_per_node: int = 1,
    exclude_head: bool = True,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> bool:
    """Tell whether no node holds more than `max_per_node` replicas of one deployment.

    With `exclude_head` (default), a replica on the head also makes it False: losing
    the head would then take replicas down with it.
    """
    with activity_errors():
        max_per_node = int(
            number(max_per_node, "serve_replicas_spread `max_per_node`", integer=True)
        )
    placement = serve_replica_placement(configuration, secrets)
    for pod, info in placement["nodes"].items():
        counts = Counter(info["replicas"])
        if exclude_head and info["role"] == "head" and sum(counts.values()):
            logger.info("Serve replicas on the head pod %s: %s", pod, dict(counts))
            return False
        crowded = {dep: n for dep, n in counts.items() if n > max_per_node}
        if crowded:
            logger.info("Pod %s holds more than %d replica(s): %s", pod, max_per_node, crowded)
            return False
    return True
