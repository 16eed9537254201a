"""`chaos discover chaosraysvc`: list every probe and action with its kind."""

from __future__ import annotations

from typing import Any

from chaoslib.discovery.discover import discover_activities, initialize_discovery_result
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
    "chaosraysvc.activities.traffic_actions",
)


def load_exported_activities() -> list[DiscoveredActivities]:
    """Return every activity of chaosraysvc, probes then actions."""
    activities: list[DiscoveredActivities] = []
    for module in PROBE_MODULES:
        activities.extend(discover_activities(module, "probe"))
    for module in ACTION_MODULES:
        activities.extend(discover_activities(module, "action"))
    return activities


def discover(discover_system: bool = True) -> Discovery:
    """Discover chaosraysvc's capabilities (no system discovery is made)."""
    discovery: dict[str, Any] = initialize_discovery_result("chaosraysvc", __version__, "raysvc")
    discovery["activities"].extend(load_exported_activities())
    return discovery
