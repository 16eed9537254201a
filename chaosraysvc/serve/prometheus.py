"""Ask the Prometheus that scrapes the Ray pods: one instant query, one value.

The query goes through chaostoolkit-prometheus (`chaosprometheus.probes.query`), the Chaos
Toolkit extension for Prometheus; this wraps its answers and errors once. PromQL's `@`
modifier (`... @ 1796521124`) dates a query to a past moment (Prometheus 2.33+ answers it
by default): what the report's view per phase uses.
"""

from __future__ import annotations

from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc.model.serve_metrics import scalar_of

__all__ = ["PrometheusError", "ask"]


class PrometheusError(ChaosRaySvcError):
    """Prometheus did not answer a query, or answered it with an error."""


def ask(base_url: str, promql: str, timeout: float = 10) -> float | None:
    """Return the one value of `promql` at Prometheus `base_url` (None: no series matched)."""
    import requests
    from chaosprometheus.probes import query

    try:
        answer = query(promql, timeout=timeout, configuration={"prometheus_base_url": base_url})
        return scalar_of(answer)
    except requests.RequestException as exc:
        raise PrometheusError(f"Prometheus at {base_url} did not answer {promql!r}: {exc}") from exc
    except Exception as exc:  # chaosprometheus' FailedActivity (an HTTP error), our ValueError
        raise PrometheusError(f"Prometheus at {base_url}, query {promql!r}: {exc}") from exc
