"""Run background traffic around a whole experiment, and abort it on too many failures.

Declare it at the experiment's top level; its arguments are the traffic knobs of
`chaosraysvc.traffic.settings.TrafficOptions`, the same as the `start_traffic` action's::

    "controls": [
        {
            "name": "traffic",
            "provider": {
                "type": "python",
                "module": "chaosraysvc.controls.traffic",
                "arguments": {"mode": "rate", "rate": 100, "concurrency": 4, "max_failures": 50}
            }
        }
    ]

The traffic starts before the steady-state hypothesis (so the baseline is measured) and
stops after the rollbacks whatever happened (`after_experiment_control`; `cleanup_control`
and an `atexit` hook too); as it starts, the doctor's HA risks for the target are recorded
(the extension's `doctor`, which the report shows). The log path and the summary (without
its timeline) go to the journal's `extensions` entry
`{"name": "chaosraysvc", "traffic": {"log", "summary"}}`.
When the traffic or its target cannot be used, the experiment is interrupted before any
request is sent.

Request headers that must not be written anywhere (a bearer token, API keys) come from
the experiment's `secrets` scope "traffic", which the control reads on its own::

    "secrets": {
        "traffic": {
            "authorization_token": {"type": "env", "key": "SERVE_TOKEN"},
            "headers": {"X-Api-Key": {"type": "env", "key": "SERVE_API_KEY"}}
        }
    }

The journal and the traffic log name those headers (`secret_headers`), never their values.

`max_failures` (>= 0) aborts the experiment once more requests failed: the journal's status
becomes "aborted" (as chaoslib's continuous hypothesis does), so the method stops after the
current activity and the rollbacks still run; crossed before the method, its first activity
is refused with `InterruptExecution`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from chaoslib.exceptions import InterruptExecution, InvalidControl
from chaoslib.run import RunEventHandler

from chaosraysvc.config import setting, settings_from
from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc.traffic import registry
from chaosraysvc.traffic.engine import TrafficEngine
from chaosraysvc.traffic.resolve import resolve_settings
from chaosraysvc.traffic.settings import OPTION_NAMES, parse_options
from chaosraysvc.traffic.stats import journal_summary

__all__ = [
    "after_experiment_control",
    "before_activity_control",
    "before_experiment_control",
    "cleanup_control",
    "configure_control",
    "validate_control",
]

logger = logging.getLogger("chaostoolkit")

EXTENSION_NAME = "chaosraysvc"
ARGUMENTS = frozenset(OPTION_NAMES)
_STOPPABLE = ("failed", "interrupted", "aborted")


class _RunState(RunEventHandler):
    """Keeps the running journal and where the run is, for `max_failures` aborts."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.journal: dict[str, Any] | None = None
        self.method_done = False
        self.abort_reason = ""
        self.doctor: dict[str, Any] | None = None

    def reset(self) -> None:
        with self.lock:
            self.journal, self.method_done, self.abort_reason = None, False, ""
            self.doctor = None

    def running(self, experiment: Any, journal: Any, *args: Any, **kwargs: Any) -> None:
        with self.lock:
            self.journal = journal

    def method_completed(self, experiment: Any, state: Any = None) -> None:
        with self.lock:
            self.method_done = True

    def finish(self, journal: Any) -> None:
        with self.lock:
            self.journal = None


_state = _RunState()


def _abort(engine: TrafficEngine) -> None:
    """Abort the run from the traffic thread: chaoslib stops after the current activity."""
    reason = (
        f"traffic failures ({engine.failures}) exceeded max_failures "
        f"({engine.settings.options.max_failures})"
    )
    with _state.lock:
        _state.abort_reason = reason
        journal, method_done = _state.journal, _state.method_done
        if method_done:
            logger.error("%s after the method: nothing left to abort", reason)
            return
        if journal is None:
            logger.error("%s: the next method activity will be refused", reason)
            return
        if journal.get("status") in _STOPPABLE:
            return
        journal["status"] = "aborted"
    logger.error(
        "%s: aborting the experiment after the current activity; rollbacks will run", reason
    )


def validate_control(control: Mapping[str, Any]) -> None:
    """Check the control's argument names and the values that need no substitution."""
    arguments = dict(control.get("provider", {}).get("arguments") or {})
    unknown = sorted(set(arguments) - ARGUMENTS)
    if unknown:
        raise InvalidControl(
            f"control {control.get('name')!r}: unknown argument(s) {', '.join(unknown)} "
            f"for chaosraysvc.controls.traffic; use {', '.join(sorted(ARGUMENTS))}"
        )
    static = {k: v for k, v in arguments.items() if not (isinstance(v, str) and "${" in v)}
    try:
        parse_options(static)
    except ChaosRaySvcError as exc:
        raise InvalidControl(f"control {control.get('name')!r}: {exc}") from exc


def configure_control(
    experiment: Any = None,
    configuration: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
    settings: Any = None,
    event_registry: Any = None,
    **arguments: Any,
) -> None:
    """Register the run watcher that lets `max_failures` abort the experiment."""
    _state.reset()
    if event_registry is not None:
        if _state not in event_registry.handlers:
            event_registry.register(_state)
    else:
        logger.warning(
            "chaoslib gave the traffic control no event registry: max_failures will refuse "
            "the next method activity instead of aborting with rollbacks"
        )
    registry.set_abort_handler(_abort)


def before_experiment_control(
    context: Any,
    configuration: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
    **arguments: Any,
) -> None:
    """Start the traffic before the steady-state hypothesis (interrupt if it cannot).

    The target is resolved and checked before the first request, when the traffic's
    URLs come from it.
    """
    known = {k: v for k, v in arguments.items() if k in ARGUMENTS}
    try:
        preset = setting(configuration, "traffic_preset")
        settings = resolve_settings(parse_options(known, preset), configuration, secrets)
        engine, _ = registry.start_engine(settings)
    except Exception as exc:  # chaoslib would swallow it and run without traffic
        logger.error("The traffic control cannot start the traffic: %s", exc)
        raise InterruptExecution(f"traffic control: {exc}") from exc
    logger.info("Traffic log: %s", engine.log_path)
    _state.doctor = _diagnose(configuration, secrets)


def _diagnose(
    configuration: Mapping[str, Any] | None, secrets: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The doctor's HA risks for the target, as the run starts (recorded in the journal, so
    the report shows what the set-up risked; a failure to inspect is recorded, not raised)."""
    from chaosraysvc.doctor import diagnose

    record: dict[str, Any] = {"source": "the doctor, as the run started", "at": time.time()}
    record["min_severity"] = "low"
    try:
        diagnosis = diagnose(settings_from(configuration), secrets)
    except ChaosRaySvcError as exc:
        logger.warning("HA risks not recorded: the doctor could not inspect the target: %s", exc)
        return {**record, "risks": [], "error": str(exc)}
    return {**record, "risks": [r.to_json() for r in diagnosis.risks], "error": ""}


def before_activity_control(context: Any, experiment: Any = None, **kwargs: Any) -> None:
    """Refuse to start a method activity once `max_failures` was exceeded."""
    reason = _state.abort_reason
    if not reason or not isinstance(experiment, Mapping):
        return
    if any(context is activity for activity in experiment.get("method", [])):
        with _state.lock:
            journal = _state.journal
        if journal is not None and journal.get("status") == "aborted":
            return  # chaoslib already stops the method after the current activity
        raise InterruptExecution(f"{reason}: not starting {context.get('name')!r}")


def after_experiment_control(
    context: Any,
    state: Any = None,
    configuration: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
    **arguments: Any,
) -> None:
    """Stop the traffic and add its log path and summary to the journal."""
    try:
        summary = registry.stop_engine()
    except ChaosRaySvcError as exc:
        logger.error("Stopping the traffic failed: %s", exc)
        return
    if summary is None or not isinstance(state, dict):
        return
    extensions = state.setdefault("extensions", [])
    entry = next(
        (e for e in extensions if isinstance(e, dict) and e.get("name") == EXTENSION_NAME), None
    )
    if entry is None:
        entry = {"name": EXTENSION_NAME}
        extensions.append(entry)
    entry["traffic"] = {"log": summary["log"], "summary": journal_summary(summary)}
    entry["versions"] = versions()
    if _state.doctor is not None:
        entry["doctor"] = _state.doctor
    try:
        settings = settings_from(configuration)
        entry["target"] = {
            "target": settings.target,
            "rayservice": settings.rayservice_name,
            "namespace": settings.rayservice_namespace,
        }
    except ChaosRaySvcError:
        pass
    if _state.abort_reason:
        entry["traffic"]["aborted"] = _state.abort_reason


def versions() -> dict[str, str]:
    """Return the versions of Ray, chaosraysvc, Chaos Toolkit and chaoslib installed here."""
    found = {}
    for key, dist in (
        ("ray", "ray"),
        ("chaosraysvc", "chaosraysvc"),
        ("chaostoolkit", "chaostoolkit"),
        ("chaoslib", "chaostoolkit-lib"),
    ):
        try:
            found[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[key] = "not installed"
    return found


def cleanup_control() -> None:
    """Stop the traffic if it still runs and forget the run."""
    try:
        registry.stop_engine()
    finally:
        registry.set_abort_handler(None)
        _state.reset()
