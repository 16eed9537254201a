"""Ask the Prometheus that scrapes the Ray pods: one instant query, one value.

The query goes through chaostoolkit-prometheus (`chaosprometheus.probes.query`), the Chaos
Toolkit extension for Prometheus; this wraps its answers and errors once. PromQL's `@`
modifier (`... @ 1796521124`) dates a query to a past moment (Prometheus 2.33+ answers it
by default): what the report's view per phase uses.

chaostoolkit-prometheus 0.6.0 sends its request with no client timeout (only Prometheus'
own `timeout` parameter): a server that accepts the connection and never answers would hang
the probe, and the experiment, for good. So the query runs in a daemon thread given
`timeout` + `ANSWER_GRACE_S` seconds; past that the probe fails, saying so.
"""

from __future__ import annotations

import threading
from typing import Any

from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc.model.serve_metrics import scalar_of

__all__ = ["ANSWER_GRACE_S", "PrometheusError", "ask"]

ANSWER_GRACE_S = 5.0  # beyond the query's own timeout, for the HTTP exchange


class PrometheusError(ChaosRaySvcError):
    """Prometheus did not answer a query, or answered it with an error."""


def ask(base_url: str, promql: str, timeout: float = 10) -> float | None:
    """Return the one value of `promql` at Prometheus `base_url` (None: no series matched)."""
    import requests
    from chaosprometheus.probes import query

    done: dict[str, Any] = {}

    def run() -> None:
        try:
            config = {"prometheus_base_url": base_url}
            done["answer"] = query(promql, timeout=timeout, configuration=config)
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            done["error"] = exc

    worker = threading.Thread(target=run, name="prometheus-query", daemon=True)
    worker.start()
    worker.join(timeout + ANSWER_GRACE_S)
    if worker.is_alive():  # left blocked on its socket; a daemon: it does not hold the exit
        raise PrometheusError(
            f"Prometheus at {base_url} did not answer {promql!r} within "
            f"{timeout + ANSWER_GRACE_S:g} s (connected, no answer): check the server"
        )
    try:
        if "error" in done:
            raise done["error"]
        return scalar_of(done["answer"])
    except requests.RequestException as exc:
        raise PrometheusError(f"Prometheus at {base_url} did not answer {promql!r}: {exc}") from exc
    except Exception as exc:  # chaosprometheus' FailedActivity (an HTTP error), our ValueError
        raise PrometheusError(f"Prometheus at {base_url}, query {promql!r}: {exc}") from exc
