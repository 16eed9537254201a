"""Probes that judge a run by what Ray Serve and KubeRay themselves counted, in Prometheus.

For teams that do not send synthetic requests to a production RayService: the hypothesis
reads Serve's own request and error counters and latency histogram, scraped by their
Prometheus, over a window of the run. Queries go through chaostoolkit-prometheus
(`chaosprometheus.probes.query`) to `prometheus_base_url` in the experiment's configuration.

The window: `window="run"` is the run so far, from `lookback` seconds (60) before this
process's first metric probe (the steady-state check before the method) until now, so the
first check judges the last minute and the last check the whole run. A number is that many
seconds. A window holding no Serve request at all does not read as healthy: the probe fails
saying so (no traffic, or Prometheus does not scrape the Ray pods).

What these can and cannot see (measured in docs/metrics.md): a request refused before it
reaches a Serve proxy (the proxy's pod is gone) is counted nowhere, only as a drop of the
request rate; a proxy's counts after its last scrape before it died are lost; a scrape
interval hides failures shorter than it only when nothing else is counted at all.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosraysvc.activities.common import activity_errors
from chaosraysvc.config import number, setting
from chaosraysvc.model.serve_metrics import (
    SeriesFilter,
    error_ratio_query,
    latency_quantile_query,
    lowest_rate_query,
    not_ready_query,
    ready_query,
    requests_query,
)
from chaosraysvc.serve import prometheus

__all__ = [
    "rayservice_ready_throughout",
    "serve_error_ratio",
    "serve_latency_ms",
    "serve_request_rate",
    "serve_request_rate_change",
]
logger = logging.getLogger("chaostoolkit")
_first_check: list[float] = []  # when this process's first metric probe ran


def _ask(promql: str, configuration: Configuration | None) -> float | None:
    """One instant query (`serve/prometheus.py`, through chaostoolkit-prometheus)."""
    with activity_errors():
        base = setting(configuration, "prometheus_base_url").rstrip("/")
    if not base:
        raise ActivityFailed(
            "no Prometheus to ask: set `prometheus_base_url` in the experiment's configuration "
            "or $RAYSVC_PROMETHEUS_URL (on the lab's node: in kube.env)"
        )
    with activity_errors():
        return prometheus.ask(base, promql)


def _num(value: Any, what: str) -> float:
    with activity_errors():
        return number(value, what)


def run_window(window: Any = "run", lookback: Any = 60) -> float:
    """Seconds the probes look back: `window` seconds, or for "run" the run so far plus
    `lookback` (see the module's text)."""
    back = _num(lookback, "`lookback`")
    if back < 1:
        raise ActivityFailed(f"`lookback` must be >= 1 s (got {lookback})")
    now = time.time()
    if not _first_check:
        _first_check.append(now)
    if window == "run":
        return now - _first_check[0] + back
    seconds = _num(window, '`window` (seconds or "run")')
    if seconds < 1:
        raise ActivityFailed(f'`window` must be "run" or >= 1 s (got {window})')
    return seconds


def _which(application: str, route: str, error_codes: str = "5..") -> SeriesFilter:
    return SeriesFilter(str(application or ""), str(route or ""), str(error_codes or "5.."))


def _no_requests(seconds: float, configuration: Configuration | None) -> ActivityFailed:
    return ActivityFailed(
        f"Serve's proxies counted no request in the last {seconds:.0f} s at "
        f"{setting(configuration, 'prometheus_base_url')}: nothing to judge (no traffic, "
        "a filter matching nothing, or Prometheus not scraping the Ray pods' metrics port: "
        "see its /targets)"
    )


def serve_error_ratio(
    window: Any = "run",
    application: str = "",
    route: str = "",
    error_codes: str = "5..",
    lookback: Any = 60,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> float:
    """Return the share of Serve's requests that were errors over the window.

    As Serve's proxies counted them: responses whose status matches `error_codes` (5xx by
    default) of all responses; 0.0 when none failed. Fails when Serve counted no request at
    all in the window."""
    seconds = run_window(window, lookback)
    errors_q, requests_q = error_ratio_query(_which(application, route, error_codes), seconds)
    total = _ask(requests_q, configuration)
    if not total:
        raise _no_requests(seconds, configuration)
    errors = _ask(errors_q, configuration) or 0.0
    ratio = errors / total
    logger.info("Serve error ratio over %.0f s: %.4f (%.0f of %.0f)", seconds, ratio, errors,
                total)  # fmt: skip
    return round(ratio, 6)


def serve_request_rate(
    window: Any = "run",
    application: str = "",
    route: str = "",
    lookback: Any = 60,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> float:
    """Return Serve's requests per second over the window (0.0 when it counted none)."""
    seconds = run_window(window, lookback)
    total = _ask(requests_query(_which(application, route), seconds), configuration) or 0.0
    return round(total / seconds, 3)


def serve_request_rate_change(
    window: Any = "run",
    baseline: Any = 60,
    application: str = "",
    route: str = "",
    lookback: Any = 60,
    worst_span: Any = 0,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> float:
    """Return the change of Serve's request rate from its baseline, in percent.

    The rate over the window against the rate over the `baseline` seconds just before it
    (-100: nothing counted any more; 0: the same). With `worst_span` seconds (e.g. 30), the
    rate is the lowest over any span that long in the window (evaluated every half span),
    so an outage is not diluted by the rest of the run. Fails when Serve counted no request
    in the baseline (nothing to compare with)."""
    seconds = run_window(window, lookback)
    base_s = _num(baseline, "`baseline`")
    if base_s < 1:
        raise ActivityFailed(f"`baseline` must be >= 1 s (got {baseline})")
    which = _which(application, route)
    before = _ask(requests_query(which, base_s, offset=seconds), configuration)
    if not before:
        raise _no_requests(base_s, configuration)
    span = _num(worst_span, "`worst_span`")
    if span and not 1 <= span <= seconds:
        raise ActivityFailed(f"`worst_span` must be 0 or 1 s to the window (got {worst_span})")
    if span:
        rate = _ask(lowest_rate_query(which, seconds, span, span / 2), configuration) or 0.0
    else:
        rate = (_ask(requests_query(which, seconds), configuration) or 0.0) / seconds
    change = 100.0 * (rate / (before / base_s) - 1.0)
    logger.info("Serve request rate: %.2f/s (%s over %.0f s), %.2f/s before: %+.1f %%", rate,
                f"lowest {span:g} s" if span else "mean", seconds, before / base_s,
                change)  # fmt: skip
    return round(change, 2)


def serve_latency_ms(
    quantile: Any = 0.99,
    window: Any = "run",
    application: str = "",
    route: str = "",
    lookback: Any = 60,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> float:
    """Return the `quantile` (0.99) of Serve's request latency over the window, in ms.

    From Serve's histogram, so to the resolution of its buckets. Fails when it counted
    none."""
    q = _num(quantile, "`quantile`")
    if not 0 < q < 1:
        raise ActivityFailed(f"`quantile` must be between 0 and 1 (got {quantile})")
    seconds = run_window(window, lookback)
    value = _ask(latency_quantile_query(_which(application, route), seconds, q), configuration)
    if value is None or math.isnan(value):
        raise _no_requests(seconds, configuration)
    return round(value, 1)


def rayservice_ready_throughout(
    window: Any = "run",
    lookback: Any = 60,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> bool:
    """Tell whether KubeRay's operator reported the RayService Ready at every scrape.

    Over the window, from `kuberay_service_condition_ready` (the operator needs
    `--enable-metrics`): False when a scrape saw it not Ready; fails when none saw it at
    all."""
    with activity_errors():
        name = setting(configuration, "rayservice_name")
        namespace = setting(configuration, "rayservice_namespace")
    seconds = run_window(window, lookback)
    if _ask(not_ready_query(name, namespace, seconds), configuration):
        return False
    if not _ask(ready_query(name, namespace, seconds), configuration):
        raise ActivityFailed(
            f"KubeRay reported nothing for RayService {namespace}/{name} in the last "
            f"{seconds:.0f} s: does Prometheus scrape the operator (with --enable-metrics)?"
        )
    return True
