"""Resolve where an activity acts from Chaos Toolkit `configuration` and the environment.

Each setting is read from the experiment's `configuration` first, then from an
environment variable, then a default::

    "configuration": {
        "raysvc_target": {"type": "env", "key": "RAYSVC_TARGET", "default": "sandbox"},
        "rayservice_name": "rayservice-ha",
        "rayservice_namespace": "default"
    }
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaosraysvc.errors import ConfigurationError

TARGETS = ("sandbox", "kubernetes")


@dataclass(frozen=True)
class Setting:
    """One setting, declared once: its configuration key, variable, default, group and doc.

    `group` says who reads it: `target` (where activities act: `Settings`, the report's
    configuration table), `metrics` (the metrics control), `traffic` (the traffic control).
    The README's tables of configuration keys are checked against `SETTINGS`
    (tests/unit/test_settings_declared_once.py), so `doc` is the sentence users read.
    """

    key: str
    env: str
    default: str
    group: str
    doc: str


SETTINGS: tuple[Setting, ...] = (
    Setting("raysvc_target", "RAYSVC_TARGET", "sandbox", "target",
            "`kubernetes` (default `sandbox`)"),
    Setting("rayservice_name", "RAYSVC_NAME", "rayservice-ha", "target",
            "the RayService (default `rayservice-ha`)"),
    Setting("rayservice_namespace", "RAYSVC_NAMESPACE", "default", "target",
            "its namespace (default `default`)"),
    Setting("sandbox_state_dir", "RAYSVC_SANDBOX_DIR", "", "target",
            "the sandbox's state directory (default `~/.local/state/chaosraysvc/sandbox`)"),
    Setting("serve_url", "RAYSVC_SERVE_URL", "", "target",
            "Serve's base URL for the traffic; required outside the cluster (never proxied "
            "through the API server)"),
    Setting("dashboard_url", "RAYSVC_DASHBOARD_URL", "", "target",
            "the dashboard's base URL; optional: in a pod the head Service, outside the head "
            "Service through the API server's service proxy"),
    Setting("redis_label_selector", "RAYSVC_REDIS_LABEL_SELECTOR", "", "target",
            "find the Redis pods by labels instead of by the GCS address"),
    Setting("node_loss_command", "RAYSVC_NODE_LOSS_COMMAND", "", "target",
            "the command that loses the Kubernetes nodes named after it as machines are lost "
            "(e.g. a script that stops their instances); `lose_node` runs it. The lab's "
            "kube.env sets it"),
    Setting("node_restore_command", "RAYSVC_NODE_RESTORE_COMMAND", "", "target",
            "the command that brings those nodes back; the rollback `restore_node` runs it"),
    Setting("traffic_log", "RAYSVC_TRAFFIC_LOG", "", "traffic",
            "where the traffic log goes (default: beside the journal)"),
    Setting("traffic_preset", "RAYSVC_TRAFFIC_PRESET", "", "traffic",
            "a named traffic load when the control's arguments name none: `kuberay-ha` is "
            "KubeRay's HA e2e load (10 req/s, at most 10 keep-alive connections, 150 s timeout)"),
    Setting("metrics_pushgateway_url", "RAYSVC_METRICS_PUSHGATEWAY", "", "metrics",
            "push each run to this Pushgateway (`push_to_gateway`, replacing the run's group)"),
    Setting("metrics_job", "RAYSVC_METRICS_JOB", "chaosraysvc", "metrics",
            "the Pushgateway job (default `chaosraysvc`)"),
    Setting("metrics_textfile", "RAYSVC_METRICS_TEXTFILE", "", "metrics",
            "write a `.prom` file for node-exporter's textfile collector (atomically)"),
    Setting("prometheus_base_url", "RAYSVC_PROMETHEUS_URL", "", "metrics",
            "the Prometheus that scrapes the Ray pods, for the metric probes "
            "(`chaosraysvc.activities.metric_probes`, chaostoolkit-prometheus' key)"),
    Setting("serve_metrics_lag", "RAYSVC_SERVE_METRICS_LAG", "25", "metrics",
            "seconds a request takes to reach Prometheus (Ray's export plus a scrape): the "
            "`serve_metrics` control shifts each phase by it"),
)  # fmt: skip
_BY_KEY = {s.key: s for s in SETTINGS}


def declared(key: str) -> Setting:
    """The declaration of setting `key` (KeyError for a key never declared)."""
    return _BY_KEY[key]


TARGET_KEYS = tuple(s.key for s in SETTINGS if s.group == "target")


def settings_table(group: str) -> str:
    """The Markdown table of `group`'s settings, as the README shows it."""
    rows = ["| configuration key | environment | meaning |", "|---|---|---|"]
    rows += [f"| `{s.key}` | `{s.env}` | {s.doc} |" for s in SETTINGS if s.group == group]
    return "\n".join(rows) + "\n"


def default_sandbox_dir() -> Path:
    """Return the sandbox state directory used when none is configured."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "chaosraysvc" / "sandbox"


def resolve_sandbox_dir(explicit: str | os.PathLike[str] = "") -> Path:
    """Return the sandbox state directory every command and activity uses.

    One rule: `explicit` (a `--state-dir` option or the configuration's
    `sandbox_state_dir`) when set, else `$RAYSVC_SANDBOX_DIR`, else `default_sandbox_dir()`.
    """
    chosen = str(explicit).strip() if explicit else ""
    chosen = chosen or os.environ.get("RAYSVC_SANDBOX_DIR", "").strip()
    return Path(chosen).expanduser() if chosen else default_sandbox_dir()


def number(value: Any, what: str, *, integer: bool = False) -> float:
    """Return `value` (a number, or text holding one: `"180"`) as a float.

    `what` names the value in the error (e.g. "delete_head_pod `timeout`"). Raises
    `ConfigurationError` for a bool, other types, text that is no number, NaN or infinity, and
    with `integer` a fraction.
    """
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigurationError(f"{what} must be {kind}, got {type(value).__name__} {value!r}")
    try:
        result = float(value)
    except ValueError:
        raise ConfigurationError(f"{what} must be {kind}, got {value!r}") from None
    if not math.isfinite(result) or (integer and result != int(result)):
        raise ConfigurationError(f"{what} must be {kind}, got {value!r}")
    return result


@dataclass(frozen=True)
class Settings:
    """Where activities act: the target kind and how to find the RayService."""

    target: str = "sandbox"
    rayservice_name: str = "rayservice-ha"
    rayservice_namespace: str = "default"
    sandbox_state_dir: Path = Path()
    serve_url: str = ""
    dashboard_url: str = ""
    redis_label_selector: str = ""
    node_loss_command: str = ""
    node_restore_command: str = ""


def setting(configuration: Mapping[str, Any] | None, key: str) -> str:
    """Return setting `key` from `configuration`, else its environment variable, else its default.

    Raises `ConfigurationError` when the configured value is not a plain value.
    """
    configuration = configuration or {}
    spec = declared(key)
    env_name = spec.env
    raw = configuration.get(key)
    if raw is None or raw == "":
        raw = os.environ.get(env_name, spec.default)
    if not isinstance(raw, str | int | float):
        raise ConfigurationError(
            f"configuration key {key!r} must be a string, got {type(raw).__name__}: "
            f"set it to a plain value in the experiment or through ${env_name}"
        )
    return str(raw).strip()


def settings_from(configuration: Mapping[str, Any] | None) -> Settings:
    """Build `Settings` from an experiment's configuration, with env fallbacks.

    Raises `ConfigurationError` for an unknown target or an empty name.
    """
    conf: Mapping[str, Any] = configuration or {}
    target = setting(conf, "raysvc_target").lower()
    if target not in TARGETS:
        raise ConfigurationError(
            f"unknown target {target!r} (configuration 'raysvc_target' or $RAYSVC_TARGET): "
            f"use one of {', '.join(TARGETS)}"
        )
    name = setting(conf, "rayservice_name")
    namespace = setting(conf, "rayservice_namespace")
    if not name or not namespace:
        raise ConfigurationError(
            "rayservice_name and rayservice_namespace must not be empty "
            "(configuration or $RAYSVC_NAME / $RAYSVC_NAMESPACE)"
        )
    return Settings(
        target=target,
        rayservice_name=name,
        rayservice_namespace=namespace,
        sandbox_state_dir=resolve_sandbox_dir(setting(conf, "sandbox_state_dir")),
        serve_url=setting(conf, "serve_url").rstrip("/"),
        dashboard_url=setting(conf, "dashboard_url").rstrip("/"),
        redis_label_selector=setting(conf, "redis_label_selector"),
        node_loss_command=setting(conf, "node_loss_command"),
        node_restore_command=setting(conf, "node_restore_command"),
    )
