"""`chaos discover chaosraysvc`: list every probe and action with its kind."""

from __future__ import annotations

import importlib
from typing import Any

from chaoslib.discovery.discover import discover_activities, initialize_discovery_result
from chaoslib.types import DiscoveredActivities, Discovery

from chaosraysvc import __version__

# Modules whose activities are all of one kind.
PROBE_MODULES = (
    "chaosraysvc.activities.serve_probes",
    "chaosraysvc.activities.pod_probes",
    "chaosraysvc.activities.doctor_probes",
)
ACTION_MODULES = ("chaosraysvc.activities.pod_actions",)
# Modules holding both kinds, which name them in `PROBES` and `ACTIONS` tuples.
MIXED_MODULES = ("chaosraysvc.activities.traffic",)


def _mixed(module_name: str) -> list[DiscoveredActivities]:
    module = importlib.import_module(module_name)
    kinds = {name: "probe" for name in module.PROBES} | {name: "action" for name in module.ACTIONS}
    found = []
    for activity in discover_activities(module_name, "probe"):
        activity["type"] = kinds[activity["name"]]
        found.append(activity)
    return found


def load_exported_activities() -> list[DiscoveredActivities]:
    """Return every activity of chaosraysvc, probes then actions."""
    activities: list[DiscoveredActivities] = []
    for module in PROBE_MODULES:
        activities.extend(discover_activities(module, "probe"))
    for module in ACTION_MODULES:
        activities.extend(discover_activities(module, "action"))
    for module in MIXED_MODULES:
        activities.extend(_mixed(module))
    return activities


def discover(discover_system: bool = True) -> Discovery:
    """Discover chaosraysvc's capabilities (no system discovery is made)."""
    discovery: dict[str, Any] = initialize_discovery_result("chaosraysvc", __version__, "raysvc")
    discovery["activities"].extend(load_exported_activities())
    return discovery
