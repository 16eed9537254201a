"""Background HTTP traffic against the serve Service, its log and its statistics.

- `settings`: the knobs, validated (`build_settings`), and where the log goes;
- `engine`: `TrafficEngine`, the asyncio/aiohttp loop in a daemon thread;
- `log`: the JSONL traffic log format and `read_traffic_log`;
- `stats`: `summarize` and friends, pure functions over a `TrafficLog`;
- `registry`: the one engine of the process, and `mark` for actions.
"""

from __future__ import annotations

from chaosraysvc.traffic.engine import TrafficEngine, classify_error
from chaosraysvc.traffic.log import RequestRecord, TrafficLog, TrafficLogError, read_traffic_log
from chaosraysvc.traffic.registry import (
    current_engine,
    last_engine,
    mark,
    start_engine,
    stop_engine,
)
from chaosraysvc.traffic.settings import TrafficSettings, build_settings
from chaosraysvc.traffic.stats import summarize

__all__ = [
    "RequestRecord",
    "TrafficEngine",
    "TrafficLog",
    "TrafficLogError",
    "TrafficSettings",
    "build_settings",
    "classify_error",
    "current_engine",
    "last_engine",
    "mark",
    "read_traffic_log",
    "start_engine",
    "stop_engine",
    "summarize",
]
