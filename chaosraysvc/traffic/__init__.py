"""Background HTTP traffic against the serve Service, its log and its statistics.

- `settings`: the knobs, declared once (`TrafficOptions`) and parsed without I/O;
- `resolve`: the options resolved for a run (target URLs, log path): `build_settings`;
- `engine`: `TrafficEngine`, the loop thread's lifecycle, wiring the three below;
- `schedule`: pacing, sequential or on a rate timeline;
- `http`: one request, its answer check and error class;
- `log`: every line of the JSONL traffic log, its writer and `read_traffic_log`;
- `stats` and `attribution`: `summarize` and friends, pure functions over a `TrafficLog`;
- `registry`: the one engine of the process, and `mark` for actions.
"""

from __future__ import annotations

from chaosraysvc.traffic.engine import TrafficEngine
from chaosraysvc.traffic.http import classify_error
from chaosraysvc.traffic.log import RequestRecord, TrafficLog, TrafficLogError, read_traffic_log
from chaosraysvc.traffic.registry import (
    current_engine,
    last_engine,
    mark,
    start_engine,
    stop_engine,
)
from chaosraysvc.traffic.resolve import build_settings, resolve_settings
from chaosraysvc.traffic.settings import TrafficOptions, TrafficSettings, parse_options
from chaosraysvc.traffic.stats import summarize

__all__ = [
    "RequestRecord",
    "TrafficEngine",
    "TrafficLog",
    "TrafficLogError",
    "TrafficOptions",
    "TrafficSettings",
    "build_settings",
    "classify_error",
    "current_engine",
    "last_engine",
    "mark",
    "parse_options",
    "read_traffic_log",
    "resolve_settings",
    "start_engine",
    "stop_engine",
    "summarize",
]
