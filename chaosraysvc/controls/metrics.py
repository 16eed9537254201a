"""Publish each run's figures as Prometheus metrics: to a Pushgateway, or as a textfile.

Declare it in the experiment (after the traffic control) or, for every run, in the
Chaos Toolkit settings file (`chaos --settings settings.yaml run ...`)::

    "controls": [
        {"name": "traffic", "provider": {"type": "python",
                                         "module": "chaosraysvc.controls.traffic"}},
        {"name": "metrics", "provider": {"type": "python",
                                         "module": "chaosraysvc.controls.metrics"}}
    ]

    # settings.yaml
    controls:
      metrics:
        provider: {type: python, module: chaosraysvc.controls.metrics}

Where they go comes from the configuration keys (else the environment variables)
`metrics_pushgateway_url` ($RAYSVC_METRICS_PUSHGATEWAY: push with `push_to_gateway`,
job `metrics_job` / $RAYSVC_METRICS_JOB, default "chaosraysvc", grouping key the
labels experiment, rayservice, namespace and target) and `metrics_textfile`
($RAYSVC_METRICS_TEXTFILE: a `.prom` file for node-exporter's textfile collector,
written atomically). Neither set: nothing is published. The metrics are listed in
`chaosraysvc.report.metrics`; their values are the report's.

The run's figures and the report's verdict (`outcome`, `headline`, `facts`) are also
added to the journal's chaosraysvc extension as `report`, so `chaos run`'s
notifications (which post the journal) carry the summary. Marking a run that proves
nothing "failed" (so `chaos run` exits 1 and notifies `run-failed`) is the verdict
control's job (`chaosraysvc.report.verdict_control`), which the experiments declare.

The work is done when the run finishes, after every control (the traffic control
first records its log in the journal), through the run's event registry; without one,
in `after_experiment_control`. A failed push or write is logged (URL or file and the
error) and never fails the experiment.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from chaosraysvc.config import declared, setting
from chaosraysvc.report.at_finish import AtFinish
from chaosraysvc.report.load import writable_extension
from chaosraysvc.report.metrics import (
    MetricsPublishError,
    journal_metrics,
    push,
    registry_of,
    write_textfile,
)

__all__ = [
    "after_experiment_control",
    "cleanup_control",
    "configure_control",
    "publish",
]

logger = logging.getLogger("chaostoolkit")


def publish(journal: dict[str, Any], configuration: Mapping[str, Any] | None = None) -> dict:
    """Compute the run's metrics from `journal`, record them in it and publish them.

    Returns what was recorded in the journal's chaosraysvc extension as `report`
    (with `published`: where the metrics went, or the error). Never raises: a failure
    is logged and recorded.
    """
    metrics, figures = journal_metrics(journal)
    verdict = figures.verdict
    report: dict[str, Any] = {
        "outcome": verdict.outcome,
        "headline": verdict.headline,
        "facts": verdict.facts,
        "metrics": metrics.as_dict(),
        "published": [],
    }
    writable_extension(journal)["report"] = report
    if metrics.requests is None:
        logger.warning(
            "The metrics control found no traffic in the journal: declare it after the "
            "traffic control (or in the settings file) to publish the traffic figures"
        )
    registry = registry_of(metrics)
    url = setting(configuration, "metrics_pushgateway_url")
    textfile = setting(configuration, "metrics_textfile")
    if not url and not textfile:
        logger.info(
            "Metrics not published: set metrics_pushgateway_url ($RAYSVC_METRICS_PUSHGATEWAY) "
            "or metrics_textfile ($RAYSVC_METRICS_TEXTFILE)"
        )
    if url:
        job = setting(configuration, "metrics_job") or declared("metrics_job").default
        group = {k: v for k, v in metrics.labels.items() if v}
        try:
            seconds = push(registry, url, job, group)
        except MetricsPublishError as exc:
            logger.error("%s", exc)
            report["published"].append({"pushgateway": url, "error": str(exc)})
        else:
            logger.info(
                "Pushed the run's metrics to the Pushgateway at %s (job %r) in %.0f ms",
                url,
                job,
                seconds * 1000,
            )
            report["published"].append({"pushgateway": url, "job": job, "seconds": seconds})
    if textfile:
        try:
            write_textfile(registry, textfile)
        except MetricsPublishError as exc:
            logger.error("%s", exc)
            report["published"].append({"textfile": textfile, "error": str(exc)})
        else:
            logger.info("Wrote the run's metrics to %s", textfile)
            report["published"].append({"textfile": textfile})
    return report


def _publish_safely(journal: Any, configuration: Mapping[str, Any] | None) -> None:
    if not isinstance(journal, dict):
        logger.error("The metrics control got no journal: nothing published")
        return
    try:
        publish(journal, configuration)
    except Exception:  # a bug here must not fail the run
        logger.exception("The metrics control could not compute the run's metrics")


class _AtFinish(AtFinish):
    """Publishes when the run finishes, after every control wrote into the journal."""

    def __init__(self) -> None:
        super().__init__()
        self.configuration: Mapping[str, Any] | None = None

    def run(self, journal: Any) -> None:
        _publish_safely(journal, self.configuration)


_at_finish = _AtFinish()


def configure_control(
    experiment: Any = None,
    configuration: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
    settings: Any = None,
    event_registry: Any = None,
    **arguments: Any,
) -> None:
    """Arrange to publish when the run finishes (after the traffic control's journal entry)."""
    if _at_finish.arm(event_registry):
        _at_finish.configuration = configuration


def after_experiment_control(
    context: Any,
    state: Any = None,
    configuration: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
    **arguments: Any,
) -> None:
    """Publish the run's metrics from the final journal `state`, unless done at finish."""
    if _at_finish.armed:
        _at_finish.configuration = configuration or _at_finish.configuration
        return
    _publish_safely(state, configuration)


def cleanup_control() -> None:
    """Nothing to release: publishing happens once, when the run finishes."""
