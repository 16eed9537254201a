"""The Serve deployments a Serve config document declares (`serveConfigV2`, the sandbox's config).

Read by both targets' `ha_facts()`: the proxy location, each deployment's replica count or
autoscaling floor and its `max_replicas_per_node`, with where each was declared.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaosraysvc.model.ha import DeploymentFacts

__all__ = ["int_value", "serve_deployments"]


def int_value(value: Any) -> int | None:
    """Return `value` as an int when it is one (or a string of digits), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def serve_deployments(
    config: Mapping[str, Any], source: str
) -> tuple[str, list[DeploymentFacts], list[str]]:
    """Return (proxy_location, deployments, notes) declared by a Serve config document."""
    notes: list[str] = []
    proxy_location = str(config.get("proxy_location") or "EveryNode")
    found: list[DeploymentFacts] = []
    for app_index, app in enumerate(config.get("applications") or []):
        if not isinstance(app, Mapping):
            continue
        app_name = str(app.get("name") or f"app{app_index}")
        for dep in app.get("deployments") or []:
            if not isinstance(dep, Mapping) or not dep.get("name"):
                continue
            name = str(dep["name"])
            where = f"{source} applications[{app_name}].deployments[{name}]"
            facts = DeploymentFacts(
                app=app_name,
                name=name,
                max_replicas_per_node=int_value(dep.get("max_replicas_per_node")),
                source=where,
            )
            auto = dep.get("autoscaling_config")
            raw = dep.get("num_replicas")
            if isinstance(auto, Mapping) or raw == "auto":
                facts.autoscaling = True
                auto_conf: Mapping[str, Any] = auto if isinstance(auto, Mapping) else {}
                facts.min_replicas = int_value(auto_conf.get("min_replicas", 1))
            elif raw is None:
                notes.append(
                    f"{where} sets no num_replicas: the code's @serve.deployment default "
                    "applies (1 unless set there); read the dashboard to know it"
                )
            else:
                facts.num_replicas = int_value(raw)
            found.append(facts)
    return proxy_location, found, notes
