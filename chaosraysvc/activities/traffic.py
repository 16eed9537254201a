"""The traffic activities under their first module path, kept for existing experiments.

Experiments that name `"module": "chaosraysvc.activities.traffic"` keep working; new
ones name `chaosraysvc.activities.traffic_actions` (start and stop) or
`chaosraysvc.activities.traffic_probes` (failures, requests sent, summary, latency).
`chaos discover` lists the activities under those two modules.
"""

from __future__ import annotations

from chaosraysvc.activities.traffic_actions import start_traffic, stop_traffic
from chaosraysvc.activities.traffic_probes import (
    traffic_failures,
    traffic_latency_ms,
    traffic_sent_at_least,
    traffic_summary,
)
from chaosraysvc.traffic.registry import mark

__all__ = [
    "mark",
    "start_traffic",
    "stop_traffic",
    "traffic_failures",
    "traffic_latency_ms",
    "traffic_sent_at_least",
    "traffic_summary",
]
