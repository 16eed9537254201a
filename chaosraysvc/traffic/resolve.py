"""Resolve parsed traffic options for one run: the URLs to send to and the log file.

`resolve_settings` is called by both the `start_traffic` action and the traffic
control; it is the only traffic code that reads the target or the command line. When
the URLs come from the target (no `url`, or `endpoints` "serve_endpoints"), the target
is validated first (`chaosraysvc.targets.resolve_target`), so a sandbox that is not up,
a missing kubeconfig or a RayService that does not exist stops the run before the first
request.

The traffic log goes beside the journal: `chaos run --journal-path out/j.json` gives
`out/j-traffic.jsonl`, the default `./journal.json` gives `./journal-traffic.jsonl`.
`log_path`, then the configuration key `traffic_log`, then `$RAYSVC_TRAFFIC_LOG`
override it.

The request headers held in the experiment's `secrets` (bearer token, API keys; see
`chaosraysvc.traffic.settings.parse_secrets`) are checked before the target is read.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaosraysvc.config import setting
from chaosraysvc.errors import ConfigurationError
from chaosraysvc.traffic.settings import (
    SERVE_ENDPOINTS,
    TargetEndpoint,
    TrafficOptions,
    TrafficSettings,
    endpoint,
    parse_options,
    parse_secrets,
)

if TYPE_CHECKING:
    from chaosraysvc.targets import Target

__all__ = ["build_settings", "journal_path", "resolve_log_path", "resolve_settings"]

LOG_KEY = "traffic_log"


def journal_path() -> Path:
    """Return where `chaos run` writes its journal (./journal.json by default).

    chaostoolkit keeps `--journal-path` only as a parameter of its `run` click command:
    this reads it from the current click context (main thread), then from `sys.argv`
    (other threads, `python -m chaostoolkit`), else returns the CLI's default.
    """
    try:
        import click

        ctx = click.get_current_context(silent=True)
    except ImportError:  # pragma: no cover - click comes with chaostoolkit
        ctx = None
    while ctx is not None:
        value = ctx.params.get("journal_path")
        if isinstance(value, str) and value:
            return Path(value)
        ctx = ctx.parent
    argv = sys.argv
    for index, arg in enumerate(argv):
        if arg == "--journal-path" and index + 1 < len(argv):
            return Path(argv[index + 1])
        if arg.startswith("--journal-path="):
            return Path(arg.split("=", 1)[1])
    return Path("journal.json")


def resolve_log_path(
    log_path: str = "", configuration: Mapping[str, Any] | None = None
) -> tuple[Path, bool]:
    """Return where the traffic log goes and whether it is the journal-based default.

    See the module docstring for the order of precedence. The engine registry gives a
    default path a `-2`, `-3`... suffix when an earlier engine of this process used it.
    """
    configured = (configuration or {}).get(LOG_KEY)
    if configured is not None and not isinstance(configured, str):
        raise ConfigurationError(
            f"configuration key {LOG_KEY!r} must be a file path string, "
            f"got {type(configured).__name__}"
        )
    explicit = log_path or setting(configuration, LOG_KEY)
    if explicit:
        return Path(explicit).expanduser(), False
    journal = journal_path()
    return journal.with_name(f"{journal.stem}-traffic.jsonl"), True


def resolve_settings(
    options: TrafficOptions,
    configuration: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
) -> TrafficSettings:
    """Return `options` resolved: secret headers, endpoints from the target, the log path.

    Raises `ConfigurationError` for invalid traffic secrets (never showing a value) or
    a bad log path setting, and a `ChaosRaySvcError` when the target cannot be used or
    has no ready serve endpoint (with "serve_endpoints").
    """
    headers = parse_secrets(secrets)
    endpoints = options.endpoints
    if not isinstance(endpoints, tuple) or not endpoints:
        # imported here: code that only reads traffic logs (reports) needs no target
        from chaosraysvc.targets import resolve_target

        target = resolve_target(configuration, secrets)  # validated: it exists and is up
        try:
            endpoints = _target_endpoints(target, endpoints == SERVE_ENDPOINTS)
        finally:
            target.close()
    if any(e.auth for e in endpoints) and any(n.lower() == "authorization" for n, _ in headers):
        raise ConfigurationError(
            "traffic credentials given twice: the URL holds user:password@ and the secrets "
            "set Authorization; keep one (the secrets' token, and a URL without credentials)"
        )
    log_path, log_is_default = resolve_log_path(options.log_path, configuration)
    return TrafficSettings(
        options=options,
        endpoints=endpoints,
        log_path=log_path,
        log_is_default=log_is_default,
        headers=headers,
    )


def _target_endpoints(target: Target, each: bool) -> tuple[TargetEndpoint, ...]:
    """Return the target's serve URL, or `each` ready serve endpoint, labelled by pod."""
    if not each:
        return (endpoint(target.serve_url()),)
    found = [e for e in target.serve_endpoints() if e.ready]
    if not found:
        raise ConfigurationError(
            "traffic `endpoints` 'serve_endpoints': the target has no ready serve "
            "endpoint; wait for the RayService to be ready or give `url`"
        )
    return tuple(
        endpoint({"url": e.url, "label": e.pod_name}, i, labelled=True) for i, e in enumerate(found)
    )


def build_settings(
    configuration: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
    **arguments: Any,
) -> TrafficSettings:
    """Parse `arguments` (the `TrafficOptions` knobs) and resolve them for a run."""
    return resolve_settings(
        parse_options(arguments, setting(configuration, "traffic_preset")), configuration, secrets
    )
