"""What the traffic engine sends, how fast, and where its log goes.

`build_settings` turns the knobs of the `start_traffic` action and of the
`chaosraysvc.controls.traffic` control into a validated, immutable `TrafficSettings`;
every mistake raises `ConfigurationError` naming the argument and what to do.

The traffic log goes beside the journal: `chaos run --journal-path out/j.json` gives
`out/j-traffic.jsonl`, the default `./journal.json` gives `./journal-traffic.jsonl`.
`log_path`, then the configuration key `traffic_log`, then `$RAYSVC_TRAFFIC_LOG`
override it.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from chaosraysvc.errors import ConfigurationError

__all__ = [
    "DEFAULT_BODY",
    "ENDPOINT_MODES",
    "MODES",
    "TargetEndpoint",
    "TrafficSettings",
    "build_settings",
    "journal_path",
    "resolve_log_path",
    "strip_userinfo",
]

MODES = ("sequential", "rate")
ENDPOINT_MODES = ("round_robin", "per_endpoint")
DEFAULT_BODY = '["PEAR", 12]'
SERVE_ENDPOINTS = "serve_endpoints"
LOG_CONFIG_KEY = "traffic_log"
LOG_ENV = "RAYSVC_TRAFFIC_LOG"


@dataclass(frozen=True)
class TargetEndpoint:
    """One base URL the engine sends to, with the label recorded as `ep`.

    `auth` holds credentials found in the URL's userinfo; they are sent as HTTP basic
    auth and never logged (`url` has them stripped).
    """

    url: str
    label: str | None = None
    auth: tuple[str, str] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class TrafficSettings:
    """Validated engine settings (see `build_settings` for the meaning of each)."""

    endpoints: tuple[TargetEndpoint, ...]
    log_path: Path
    path: str = "/fruit/"
    body: str = DEFAULT_BODY
    expected: str = "12"
    mode: str = "sequential"
    rate: float = 0.0
    concurrency: int = 1
    timeout: float = 2.0
    max_failures: int = -1
    endpoint_mode: str = "round_robin"
    failure_pause: float = 0.005
    log_is_default: bool = False

    @property
    def url(self) -> str:
        """Return the base URL when there is one endpoint, else ""."""
        return self.endpoints[0].url if len(self.endpoints) == 1 else ""

    @property
    def labels(self) -> list[str]:
        """Return the endpoint labels recorded in the log header (empty for one URL)."""
        return [e.label for e in self.endpoints if e.label is not None]

    def describe(self) -> dict[str, Any]:
        """Return the settings as plain JSON (no credentials) for journals and logs."""
        return {
            "url": self.url,
            "path": self.path,
            "mode": self.mode,
            "rate": self.rate,
            "concurrency": self.concurrency,
            "timeout_s": self.timeout,
            "endpoints": self.labels,
            "endpoint_urls": [e.url for e in self.endpoints] if len(self.endpoints) > 1 else [],
            "endpoint_mode": self.endpoint_mode,
            "expected": self.expected,
            "max_failures": self.max_failures,
            "log": str(self.log_path),
        }


def strip_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """Return `url` without user:password@ and the credentials that were there."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return clean, (parts.username or "", parts.password or "")


def _endpoint(raw: Any, position: int, labelled: bool) -> TargetEndpoint:
    label: str | None = None
    if isinstance(raw, Mapping):
        url = raw.get("url")
        label = raw.get("label") or raw.get("name")
    elif isinstance(raw, str):
        url = raw
        head, sep, tail = raw.partition("=")
        if sep and "://" not in head:
            label, url = head.strip(), tail
    else:
        url = None
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(
            f"traffic endpoint #{position + 1} ({raw!r}) has no URL: give a base URL such as "
            '"http://127.0.0.1:8000", "label=http://...", or {"label": ..., "url": ...}'
        )
    clean, auth = strip_userinfo(_check_url(url.strip().rstrip("/"), "endpoints"))
    if labelled and not label:
        parts = urlsplit(clean)
        label = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    return TargetEndpoint(url=clean, label=str(label) if labelled else None, auth=auth)


def _check_url(url: str, argument: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"traffic `{argument}` {strip_userinfo(url)[0]!r} is not an http(s) URL: "
            "give a base URL such as http://127.0.0.1:8000"
        )
    return url


def _number(value: Any, argument: str, integer: bool = False) -> float:
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigurationError(
            f"traffic `{argument}` must be {kind}, got {type(value).__name__} {value!r}"
        )
    try:
        number = float(value)
    except ValueError:
        raise ConfigurationError(f"traffic `{argument}` must be {kind}, got {value!r}") from None
    if not math.isfinite(number) or (integer and number != int(number)):
        raise ConfigurationError(f"traffic `{argument}` must be {kind}, got {value!r}")
    return number


def _text(value: Any, argument: str) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"traffic `{argument}` must be text or JSON-serializable, got {value!r}"
        ) from exc


def journal_path() -> Path:
    """Return where `chaos run` writes its journal (./journal.json by default).

    chaostoolkit 1.19 keeps `--journal-path` only as a parameter of its `run` click
    command and writes the journal after the run; this reads that parameter from the
    current click context (main thread, while `chaos run` executes), then from
    `sys.argv` (other threads, `python -m chaostoolkit`), and falls back to the CLI
    default.
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
    explicit = log_path or (configuration or {}).get(LOG_CONFIG_KEY) or os.environ.get(LOG_ENV)
    if explicit:
        if not isinstance(explicit, str):
            raise ConfigurationError(
                f"configuration key {LOG_CONFIG_KEY!r} must be a file path string, "
                f"got {type(explicit).__name__}"
            )
        return Path(explicit).expanduser(), False
    journal = journal_path()
    return journal.with_name(f"{journal.stem}-traffic.jsonl"), True


def build_settings(
    url: str = "",
    path: str = "/fruit/",
    body: Any = DEFAULT_BODY,
    expected: Any = "12",
    mode: str = "sequential",
    rate: Any = 0.0,
    concurrency: Any = 1,
    timeout: Any = 2.0,
    log_path: str = "",
    max_failures: Any = -1,
    endpoints: Sequence[Any] | str = (),
    endpoint_mode: str = "round_robin",
    failure_pause: Any = 0.005,
    configuration: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
) -> TrafficSettings:
    """Validate the traffic knobs and return `TrafficSettings`.

    `url` is the serve base URL ("" asks the target: `resolve_target(...).serve_url()`);
    `endpoints` a list of base URLs (`"label=url"` or `{"label", "url"}` items) that
    replaces `url` and labels each request, or `"serve_endpoints"` for the target's
    ready serve endpoints labelled by pod name. `body` is sent as is when it is a
    string, else as JSON; `expected` is the answer ("" accepts any 2xx). Raises
    `ConfigurationError` naming the argument for every invalid value.
    """
    if mode not in MODES:
        raise ConfigurationError(f"traffic `mode` {mode!r} is not one of {', '.join(MODES)}")
    if endpoint_mode not in ENDPOINT_MODES:
        raise ConfigurationError(
            f"traffic `endpoint_mode` {endpoint_mode!r} is not one of {', '.join(ENDPOINT_MODES)}"
        )
    rate_f = _number(rate, "rate")
    concurrency_i = int(_number(concurrency, "concurrency", integer=True))
    timeout_f = _number(timeout, "timeout")
    max_failures_i = int(_number(max_failures, "max_failures", integer=True))
    pause_f = _number(failure_pause, "failure_pause")
    if mode == "rate" and rate_f <= 0:
        raise ConfigurationError(
            f"traffic mode 'rate' needs `rate` > 0 requests per second, got {rate!r}"
        )
    if mode == "sequential" and rate_f != 0:
        raise ConfigurationError(
            f"traffic `rate` {rate!r} is only used in mode 'rate': "
            "set `mode` to 'rate' or leave `rate` at 0"
        )
    if concurrency_i < 1:
        raise ConfigurationError(f"traffic `concurrency` must be >= 1, got {concurrency!r}")
    if mode == "sequential" and concurrency_i != 1:
        raise ConfigurationError(
            f"traffic mode 'sequential' keeps one request in flight, `concurrency` "
            f"{concurrency!r} needs mode 'rate' (with a `rate`)"
        )
    if timeout_f <= 0:
        raise ConfigurationError(f"traffic `timeout` must be > 0 seconds, got {timeout!r}")
    if max_failures_i < -1:
        raise ConfigurationError(
            f"traffic `max_failures` must be -1 (no limit) or >= 0, got {max_failures!r}"
        )
    if pause_f < 0:
        raise ConfigurationError(f"traffic `failure_pause` must be >= 0, got {failure_pause!r}")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ConfigurationError(f"traffic `path` must start with '/', got {path!r}")

    resolved: tuple[TargetEndpoint, ...]
    if isinstance(endpoints, str) and endpoints:
        if endpoints != SERVE_ENDPOINTS:
            raise ConfigurationError(
                f"traffic `endpoints` {endpoints!r} must be a list of base URLs "
                f"or the string {SERVE_ENDPOINTS!r}"
            )
        from chaosraysvc.targets import resolve_target

        found = [e for e in resolve_target(configuration, secrets).serve_endpoints() if e.ready]
        if not found:
            raise ConfigurationError(
                "traffic `endpoints` 'serve_endpoints': the target has no ready serve "
                "endpoint; wait for the RayService to be ready or give `url`"
            )
        resolved = tuple(
            _endpoint({"url": e.url, "label": e.pod_name}, i, True) for i, e in enumerate(found)
        )
    elif endpoints:
        if isinstance(endpoints, bytes | Mapping) or not isinstance(endpoints, Sequence):
            raise ConfigurationError(
                f"traffic `endpoints` must be a list of base URLs, got {endpoints!r}"
            )
        resolved = tuple(_endpoint(raw, i, True) for i, raw in enumerate(endpoints))
        labels = [e.label for e in resolved]
        if len(set(labels)) != len(labels):
            raise ConfigurationError(f"traffic `endpoints` labels must be unique, got {labels}")
    else:
        if not url:
            from chaosraysvc.targets import resolve_target

            url = resolve_target(configuration, secrets).serve_url()
        if not isinstance(url, str):
            raise ConfigurationError(f"traffic `url` must be a string, got {url!r}")
        resolved = (_endpoint(url.strip(), 0, False),)

    resolved_log, log_is_default = resolve_log_path(log_path, configuration)
    return TrafficSettings(
        endpoints=resolved,
        log_path=resolved_log,
        log_is_default=log_is_default,
        path=path,
        body=_text(body, "body"),
        expected=_text(expected, "expected").strip(),
        mode=mode,
        rate=rate_f,
        concurrency=concurrency_i,
        timeout=timeout_f,
        max_failures=max_failures_i,
        endpoint_mode=endpoint_mode,
        failure_pause=pause_f,
    )
