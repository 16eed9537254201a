"""Actions that start and stop background traffic against the serve Service.

Most experiments declare the `chaosraysvc.controls.traffic` control instead, which
runs the traffic around the whole experiment; these actions run it for part of a
method::

    {
        "type": "action",
        "name": "start-traffic",
        "provider": {
            "type": "python",
            "module": "chaosraysvc.activities.traffic_actions",
            "func": "start_traffic",
            "arguments": {"mode": "rate", "rate": 100, "concurrency": 4},
            "secrets": ["traffic"]
        }
    }

`"secrets": ["traffic"]` is needed only when the experiment's `secrets` hold a
`traffic` scope (bearer token, headers: see `chaosraysvc.traffic.settings`).
"""

from __future__ import annotations

import inspect
from dataclasses import fields
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaosraysvc.activities.common import activity_errors
from chaosraysvc.config import setting
from chaosraysvc.traffic import registry
from chaosraysvc.traffic.resolve import resolve_settings
from chaosraysvc.traffic.settings import TrafficOptions, parse_options
from chaosraysvc.traffic.stats import journal_summary

__all__ = ["start_traffic", "stop_traffic"]


def _signature() -> inspect.Signature:
    """Return `start_traffic`'s signature: the `TrafficOptions` knobs, then the usual two."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    knobs = [
        inspect.Parameter(f.name, kind, default=f.default, annotation=f.type)
        for f in fields(TrafficOptions)
    ]
    return inspect.Signature(
        [
            *knobs,
            inspect.Parameter(
                "configuration", kind, default=None, annotation="Configuration | None"
            ),
            inspect.Parameter("secrets", kind, default=None, annotation="Secrets | None"),
        ],
        return_annotation="dict[str, Any]",
    )


SIGNATURE = _signature()


def start_traffic(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Start sending requests to the serve Service in the background.

    Sends `<method> <url><path>`: `method` "POST" with `body` (a string is sent as is,
    anything else as JSON; "" sends none) or "GET" (no body). Expects a status in
    `expected_status` (a list or "200,201"; empty: any 2xx) and the answer `expected`
    (compared on the stripped text or the parsed JSON; "" accepts any; with GET "" unless
    given). `url` "" asks the target for its serve URL. `mode` "sequential"
    keeps one request in flight (pausing `failure_pause` seconds after a failure);
    "rate" starts `rate` requests per second on a fixed timeline with at most
    `concurrency` in flight. `timeout` is per request, in seconds. `endpoints` (a list
    of base URLs, "label=url" strings, or "serve_endpoints" for the target's ready
    endpoints) replaces `url` and labels every request; `endpoint_mode` "round_robin"
    or "per_endpoint" spreads them. `log_path` (default: `<journal stem>-traffic.jsonl`
    beside the journal) receives one JSON line per request. `max_failures` >= 0 aborts
    the experiment when failures exceed it, if the traffic control is declared.
    Declare `"secrets": ["traffic"]` on the provider to send the experiment's
    `traffic` secrets: `authorization_token` (as a bearer token) and `headers`; they are
    never written to the journal or the log.

    Returns `{"log": ..., "started": bool, "settings": {...}}`; `started` is False when
    traffic with the same settings already runs. Raises `ActivityFailed` for invalid
    settings or secrets, a target that cannot be used, an unwritable log, or traffic
    already running with other settings.
    """
    arguments = SIGNATURE.bind(*args, **kwargs).arguments
    configuration: Configuration | None = arguments.pop("configuration", None)
    secrets: Secrets | None = arguments.pop("secrets", None)
    with activity_errors():
        preset = setting(configuration, "traffic_preset")
        settings = resolve_settings(parse_options(arguments, preset), configuration, secrets)
        engine, started = registry.start_engine(settings)
    return {"log": str(engine.log_path), "started": started, "settings": engine.settings.describe()}


# The knobs are declared once, in `TrafficOptions`: `chaos discover` and chaoslib's
# argument check read them from this signature.
start_traffic.__signature__ = SIGNATURE  # type: ignore[attr-defined]


def stop_traffic(
    configuration: Configuration | None = None, secrets: Secrets | None = None
) -> dict[str, Any]:
    """Stop the background traffic and return its summary.

    The summary is `chaosraysvc.traffic.stats.summarize` of the traffic log, without
    the per-second `timeline`, plus `log` and `settings`. Stopping traffic that has
    already stopped returns the same summary again. Raises `ActivityFailed` when no
    traffic ran in this process or its log cannot be read.
    """
    with activity_errors():
        registry.require_engine()
        summary = registry.stop_engine()
    assert summary is not None
    return journal_summary(summary)
