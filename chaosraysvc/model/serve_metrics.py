"""What Ray Serve and KubeRay say about a run, as PromQL over the metrics they export.

Ray exports Serve's proxy counters on every Ray node's metrics port (`--metrics-export-port`,
8080 on KubeRay's pods), one series per proxy (`NodeAddress`) and route/application/status:

- `ray_serve_num_http_requests_total{route, application, method, status_code}`
- `ray_serve_num_http_error_requests_total{route, application, method, error_code}`
- `ray_serve_http_request_latency_ms_bucket{..., le}` (milliseconds)

and KubeRay's operator (with `--enable-metrics`) `kuberay_service_condition_ready{name,
namespace, condition="true"|"false"}`. The proxies' own health checks (`/-/healthz`,
`/-/routes`, application "") are left out. Counters restart at 0 when a proxy restarts (a new
head pod is a new series): `increase()` takes resets into account but cannot see what a proxy
counted after its last scrape before it died (docs/metrics.md).

A counter series is created by its first increment (Ray's metrics, like most client
libraries, have no series for a label set before it): the first 5xx of a proxy appears as a
new series already at its count, and `increase()` never counts a series' first value, so a
burst of errors shorter than an export plus a scrape was invisible to it
(benchmarks/scrape_blindness.py: 5xx for 5 s seen in 3 of 10 runs). `new_series_query`
adds the first value of every series that has no sample in the window before the one asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SeriesFilter",
    "counted_query",
    "error_ratio_query",
    "latency_quantile_query",
    "lowest_rate_query",
    "not_ready_query",
    "phase_queries",
    "ready_query",
    "requests_query",
    "scalar_of",
]

REQUESTS = "ray_serve_num_http_requests_total"
ERRORS = "ray_serve_num_http_error_requests_total"
LATENCY = "ray_serve_http_request_latency_ms_bucket"
READY = "kuberay_service_condition_ready"


@dataclass(frozen=True)
class SeriesFilter:
    """Which Serve requests count: one application and/or route ("" = every one, but never
    the proxies' own `/-/` routes), errors by their status (a regular expression, "5.." by
    default: a 404 for an unknown route is the client's error, not the service's)."""

    application: str = ""
    route: str = ""
    error_codes: str = "5.."

    def selector(self, errors: bool = False) -> str:
        parts = ['route!~"/-/.*"']
        if self.application:
            parts.append(f'application="{_quote(self.application)}"')
        if self.route:
            parts.append(f'route="{_quote(self.route)}"')
        if errors:
            parts.append(f'error_code=~"{_quote(self.error_codes)}"')
        return "{" + ",".join(parts) + "}"


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _window(seconds: float) -> str:
    return f"{max(1, round(seconds))}s"


def requests_query(which: SeriesFilter, seconds: float, offset: float = 0) -> str:
    """The requests Serve's proxies counted in the `seconds` before now (minus `offset`)."""
    shift = f" offset {_window(offset)}" if offset > 0 else ""
    return f"sum(increase({REQUESTS}{which.selector()}[{_window(seconds)}]{shift}))"


def lowest_rate_query(which: SeriesFilter, seconds: float, span: float, step: float) -> str:
    """The lowest request rate (per second) over any `span` seconds of the last `seconds`,
    evaluated every `step` seconds (a subquery): an outage's hole in the rate, which the rate
    over the whole window dilutes."""
    # `or vector(0)`: a step at which no proxy had two samples in the span (every proxy gone,
    # as when the only head or every Ray pod is deleted) is a rate of 0, not a missing step
    # that min_over_time would pass over (it then saw no outage at all).
    inner = f"(sum(rate({REQUESTS}{which.selector()}[{_window(span)}])) or vector(0))"
    return f"min_over_time({inner}[{_window(seconds)}:{_window(step)}])"


def counted_query(selector: str, seconds: float, at: str = "") -> str:
    """What a counter `selector` counted in the `seconds` before now (or `at`, "@ <epoch>"):
    its `increase()`, plus the first value of each series born in the window (an increment
    `increase()` cannot see: module docstring). 0 when nothing matched."""
    span, when = _window(seconds), f" {at}" if at else ""
    grown = f"sum(increase({selector}[{span}]{when}))"
    # both sides are functions' results (no metric name): `unless` matches a series on all
    # of its labels, so a series is "born" only if no sample of it came in the hour before
    born = (
        f"sum(min_over_time({selector}[{span}]{when})"
        f" unless last_over_time({selector}[1h]{when} offset {span}))"
    )
    return f"(({grown}) or vector(0)) + (({born}) or vector(0))"


def errors_query(which: SeriesFilter, seconds: float) -> str:
    """The error responses (by `which.error_codes`) counted in the last `seconds`, errors of
    a proxy's first 5xx series included (`counted_query`)."""
    return counted_query(f"{ERRORS}{which.selector(errors=True)}", seconds)


def error_ratio_query(which: SeriesFilter, seconds: float) -> tuple[str, str]:
    """The two queries whose ratio is the error ratio: (errors, requests); asked apart so
    that no errors (an empty result: no error series at all) reads as 0, not as no data."""
    return errors_query(which, seconds), requests_query(which, seconds)


def latency_quantile_query(which: SeriesFilter, seconds: float, quantile: float) -> str:
    """The `quantile` (0.99) of Serve's request latency in ms over the last `seconds`."""
    return (
        f"histogram_quantile({quantile:g}, sum by (le) "
        f"(increase({LATENCY}{which.selector()}[{_window(seconds)}])))"
    )


def _ready_selector(name: str, namespace: str, condition: str) -> str:
    return (
        f'{READY}{{name="{_quote(name)}",namespace="{_quote(namespace)}",'
        f'condition="{condition}"}}'
    )


def ready_query(name: str, namespace: str, seconds: float) -> str:
    """Whether KubeRay reported the RayService Ready in the last `seconds` (1 when it did)."""
    return f"max_over_time({_ready_selector(name, namespace, 'true')}[{_window(seconds)}])"


def not_ready_query(name: str, namespace: str, seconds: float) -> str:
    """Whether KubeRay reported it not Ready at any scrape of the last `seconds` (1: it did;
    an empty result: never)."""
    return f"max_over_time({_ready_selector(name, namespace, 'false')}[{_window(seconds)}])"


def phase_queries(which: SeriesFilter, start: float, end: float) -> dict[str, str]:
    """The requests, 5xx errors and p99 latency Prometheus had counted between the epoch
    seconds `start` and `end` (PromQL's `@ end`): one phase of a run, as Serve saw it."""
    span, at = _window(end - start), f"@ {end:.3f}"
    return {
        "requests": f"sum(increase({REQUESTS}{which.selector()}[{span}] {at}))",
        "errors": counted_query(f"{ERRORS}{which.selector(errors=True)}", end - start, at),
        "p99_ms": (
            f"histogram_quantile(0.99, sum by (le) "
            f"(increase({LATENCY}{which.selector()}[{span}] {at})))"
        ),
    }


def scalar_of(answer: Mapping[str, Any]) -> float | None:
    """The one value of an instant query's vector answer (None when the vector is empty, as
    when no series matched or the window held too few samples; NaN stays NaN)."""
    if answer.get("status") != "success":
        raise ValueError(f"Prometheus answered {answer.get('status')!r}: {answer.get('error')}")
    data = answer.get("data") or {}
    result = data.get("result") or []
    if data.get("resultType") == "scalar":
        return float(result[1])
    if not result:
        return None
    if len(result) > 1:
        raise ValueError(f"expected one series, got {len(result)}: {result[:3]}")
    return float(result[0]["value"][1])
