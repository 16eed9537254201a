"""The one traffic engine of this process, shared by the control and the activities.

Actions that inject or observe faults add markers to the running traffic's log with
`mark`, which does nothing when no traffic runs::

    from chaosraysvc.traffic import mark

    mark("fault", pod=pod.name, role=pod.role)
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaosraysvc.errors import ChaosRaySvcError, ConfigurationError
from chaosraysvc.traffic.engine import TrafficEngine
from chaosraysvc.traffic.settings import TrafficSettings

__all__ = [
    "current_engine",
    "last_engine",
    "mark",
    "require_engine",
    "set_abort_handler",
    "start_engine",
    "stop_engine",
]

logger = logging.getLogger("chaostoolkit")

_lock = threading.RLock()
_engine: TrafficEngine | None = None
_used_logs: set[Path] = set()
_abort_handler: Callable[[TrafficEngine], None] | None = None


def _unique_default(settings: TrafficSettings) -> TrafficSettings:
    base = settings.log_path
    candidate, n = base, 1
    while candidate.absolute() in _used_logs:
        n += 1
        candidate = base.with_name(f"{base.stem}-{n}{base.suffix}")
    return dataclasses.replace(settings, log_path=candidate)


def _same(new: TrafficSettings, running: TrafficSettings) -> bool:
    if new.log_is_default and running.log_is_default:
        new = dataclasses.replace(new, log_path=running.log_path)
    return new == running


def start_engine(settings: TrafficSettings) -> tuple[TrafficEngine, bool]:
    """Start traffic with `settings`; return the engine and whether it started now.

    When traffic already runs with the same settings it is returned as is; with other
    settings `ConfigurationError` is raised. A default (journal-based) log path that
    an earlier engine of this process used gets a `-2`, `-3`... suffix.
    """
    global _engine
    with _lock:
        running = _engine
        if running is not None and running.running:
            if _same(settings, running.settings):
                return running, False
            raise ConfigurationError(
                f"traffic is already running with other settings ({running.settings.describe()}), "
                f"logging to {running.log_path}: stop it first (stop_traffic) or start it with "
                "the same settings"
            )
        if settings.log_is_default:
            settings = _unique_default(settings)
        elif settings.log_path.absolute() in _used_logs:
            logger.warning("Overwriting the traffic log %s of an earlier run", settings.log_path)
        engine = TrafficEngine(settings, on_max_failures=_on_max_failures)
        engine.start()
        _used_logs.add(settings.log_path.absolute())
        _engine = engine
        return engine, True


def stop_engine(timeout: float = 5.0) -> dict[str, Any] | None:
    """Stop the traffic and return its summary (the last one again when already stopped).

    Returns None when no traffic was ever started in this process.
    """
    with _lock:
        engine = _engine
    if engine is None:
        return None
    return engine.stop(timeout=timeout)


def current_engine() -> TrafficEngine | None:
    """Return the engine sending traffic now, or None."""
    engine = _engine
    return engine if engine is not None and engine.running else None


def last_engine() -> TrafficEngine | None:
    """Return the running engine, else the last one that ran in this process, or None."""
    return _engine


def require_engine() -> TrafficEngine:
    """Return `last_engine()`, or raise `ChaosRaySvcError` saying how to start traffic."""
    engine = _engine
    if engine is None:
        raise ChaosRaySvcError(
            "no traffic has run in this process: start it with the start_traffic action "
            "or the chaosraysvc.controls.traffic control"
        )
    return engine


def mark(event: str, **detail: Any) -> bool:
    """Add a `mark` line to the running traffic's log; return False when none runs.

    `event` is e.g. "fault" (with `pod` and `role`), "pod_ready", "endpoints_restored"
    or "applications_running"; `detail` must be JSON-serializable and free of secrets.
    """
    engine = current_engine()
    return engine.mark(event, **detail) if engine is not None else False


def set_abort_handler(handler: Callable[[TrafficEngine], None] | None) -> None:
    """Set what to call (from the loop thread) when traffic exceeds `max_failures`."""
    global _abort_handler
    _abort_handler = handler


def _on_max_failures(engine: TrafficEngine) -> None:
    handler = _abort_handler
    if handler is None:
        logger.error(
            "Traffic failures exceeded max_failures, but nothing can abort this run: "
            "declare the control 'chaosraysvc.controls.traffic' in the experiment to abort "
            "it (rollbacks still run)"
        )
        return
    handler(engine)
