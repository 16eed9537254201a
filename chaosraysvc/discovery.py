"""`chaos discover chaosraysvc`: list every probe and action with its kind.

chaoslib reads each argument's type from its annotation object; ours are text (`from
__future__ import annotations`), which chaoslib calls "object", and `chaos init` then cannot
ask for a value (`object()` takes no arguments). So each type is read again from the
resolved annotations, a union or `Any` by its default's type (`str | float = "run"`:
string; our activities read numbers given as text).
"""

from __future__ import annotations

import importlib
import typing
from typing import Any

from chaoslib.discovery.discover import (
    discover_activities,
    initialize_discovery_result,
    portable_type_name,
)
from chaoslib.types import DiscoveredActivities, Discovery

from chaosraysvc import __version__

PROBE_MODULES = (
    "chaosraysvc.activities.serve_probes",
    "chaosraysvc.activities.pod_probes",
    "chaosraysvc.activities.doctor_probes",
    "chaosraysvc.activities.traffic_probes",
    "chaosraysvc.activities.metric_probes",
)
ACTION_MODULES = (
    "chaosraysvc.activities.pod_actions",
    "chaosraysvc.activities.process_actions",
    "chaosraysvc.activities.repeated_actions",
    "chaosraysvc.activities.rayservice_actions",
    "chaosraysvc.activities.network_actions",
    "chaosraysvc.activities.redis_actions",
    "chaosraysvc.activities.failover_actions",
    "chaosraysvc.activities.node_actions",
    "chaosraysvc.activities.traffic_actions",
)


def load_exported_activities() -> list[DiscoveredActivities]:
    """Return every activity of chaosraysvc, probes then actions."""
    activities: list[DiscoveredActivities] = []
    for module in PROBE_MODULES:
        activities.extend(_typed(module, discover_activities(module, "probe")))
    for module in ACTION_MODULES:
        activities.extend(_typed(module, discover_activities(module, "action")))
    return activities


def _portable(hint: Any, default: Any = None) -> str:
    name = portable_type_name(hint)
    if name == "object" and default is not None:
        name = portable_type_name(type(default))
    return "string" if name in ("object", "null") else name


def _typed(module: str, activities: list[Any]) -> list[Any]:
    """`activities` with each argument's and return's type read from the resolved hints."""
    loaded = importlib.import_module(module)
    for activity in activities:
        hints = typing.get_type_hints(getattr(loaded, activity["name"]))
        for arg in activity["arguments"]:
            if arg["name"] in hints:
                arg["type"] = _portable(hints[arg["name"]], arg.get("default"))
        if "return" in hints:
            activity["return_type"] = _portable(hints["return"])
    return activities


def discover(discover_system: bool = True) -> Discovery:
    """Discover chaosraysvc's capabilities (no system discovery is made)."""
    discovery: dict[str, Any] = initialize_discovery_result("chaosraysvc", __version__, "raysvc")
    discovery["activities"].extend(load_exported_activities())
    return discovery
