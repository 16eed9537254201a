"""A deliberately failing set-up on the lab's node deviates both by Serve's own metrics and
by our traffic log; after it, every panel of the Grafana dashboard (deploy/grafana/) has data.

The set-up: every Serve replica and the only proxy on the head (`node up --head-only`: no
worker, one replica per deployment), and a head that starts Ray 45 s late
(`--head-start-delay 45`: an init container's sleep, as a pull of Ray's image on a new node
delays it), so deleting the head stops the service for a minute or more. Without the delay
a new head served again ~14 s after the deletion on the lab's node: the sample's client (no
timeout) saw no failure, and Serve's lowest 30 s stayed at -68 %, inside the bound.
`experiments/head-kill-serve-metrics.json` (no traffic of ours; `query.py` in the ray-pod)
must deviate: no 30 s of the run may keep a quarter of the minute-before rate. Then
`experiments/head-kill.json` (our traffic, the CronJob's settings file: the metrics control
pushes the run to the node's Pushgateway) must deviate too. Needs root and the machine's node
lock (marked `node`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from chaosraysvc_lab.stack import KubeNode
from tests.support.deploy import cronjob_settings
from tests.support.polling import wait_for
from tests.support.promstack import dashboard_queries, instant

from .conftest import chaos_run, own_node, requires_namespaces
from .query_loop import WARM_UP_S, QueryLoop, probe_outputs

pytestmark = [pytest.mark.node, requires_namespaces]
BOUND = -75.0  # head-kill-serve-metrics.json: the lowest 30 s may not fall below this (%)
HEAD_START_DELAY_S = 45.0


@pytest.fixture(scope="module")
def node() -> Iterator[tuple[KubeNode, dict[str, str]]]:
    up = {"head_only": True, "head_start_delay": HEAD_START_DELAY_S, "scrape_interval": 15}
    with own_node("crs-metrics-fail-", **up) as started:
        yield started


def test_a_head_only_service_deviates_by_serve_metrics_and_by_the_traffic_log(
    node: tuple[KubeNode, dict[str, str]], query_loop: QueryLoop, tmp_path: Path
) -> None:
    _, settings = node
    assert settings["RAYSVC_EXPECTED_ENDPOINTS"] == "1"
    time.sleep(max(0.0, WARM_UP_S - 10))

    (tmp_path / "metrics").mkdir()
    unanswered: list[float] = []  # the users' view: query.py held or refused by the outage
    watch = threading.Thread(
        target=lambda: unanswered.append(query_loop.longest_without_answer(150))
    )
    watch.start()
    by_metrics, verdict = chaos_run("head-kill-serve-metrics", settings, tmp_path / "metrics")
    watch.join()
    sent, failed = query_loop.sent()
    lowest = probe_outputs(by_metrics, "after", "serve-request-rate-kept")
    longest = unanswered[0]
    print(f"by Serve's metrics: {verdict['outcome']}, lowest 30 s {lowest} %; query.py: "
          f"{sent} requests, {failed} failed, no answer for {longest:.1f} s at most")  # fmt: skip
    assert by_metrics["deviated"] is True and verdict["outcome"] == "deviated", verdict
    assert lowest and isinstance(lowest[0], float) and lowest[0] < BOUND, lowest
    assert unanswered[0] > HEAD_START_DELAY_S, "the sample's own client saw no outage"
    deleted = next(r for r in by_metrics["run"] if r["activity"]["name"] == "delete-head-pod")
    assert deleted["output"]["deleted"]["role"] == "head"
    assert deleted["output"]["recovery"]["recovered"] is True, deleted["output"]["recovery"]

    # Our traffic on the same set-up, run as the CronJob runs it: the metrics control pushes.
    chaos_settings = tmp_path / "settings.yaml"
    kept = {k: v for k, v in cronjob_settings().items() if k != "notifications"}
    chaos_settings.write_text(yaml.safe_dump(kept))
    (tmp_path / "traffic").mkdir()
    by_traffic, verdict = chaos_run("head-kill", settings, tmp_path / "traffic", chaos_settings)
    failures = probe_outputs(by_traffic, "after", "zero-failed-requests")
    print(f"by the traffic log: {verdict['outcome']}, failed requests {failures}")
    assert by_traffic["deviated"] is True and verdict["outcome"] == "deviated", verdict
    assert failures and failures[0] > 0, failures
    report = next(e for e in by_traffic["extensions"] if e["name"] == "chaosraysvc")["report"]
    assert report["published"] and "error" not in report["published"][0], report["published"]

    # Every panel of the dashboard has data: the pushed run and Serve's own metrics.
    url = settings["RAYSVC_PROMETHEUS_URL"]
    wait_for(lambda: instant(url, 'chaosraysvc_run_deviated{experiment!=""}'), 60,
             what="Prometheus to scrape the run's push", interval=2)  # fmt: skip
    variables = {"namespace": settings["RAYSVC_NAMESPACE"], "experiment": ".*"}
    queries = dashboard_queries(variables, rate_interval="1m", time_range="1h")
    # the new head's proxy is a new series: a rate over 1 m needs two of its scrapes
    wait_for(lambda: instant(url, dict(queries)["panel 'Serve requests per second' A"]), 120,
             what="two scrapes of the new head's proxy", interval=2)  # fmt: skip
    empty = []
    for where, expr in queries:
        found = instant(url, expr)
        print(f"{where}: {len(found)} series, e.g. {found[:1]}")
        if not found and not where.startswith("annotation"):  # it needs two runs of one
            empty.append(where)  # experiment (tests/integration/test_metrics_run.py)
    assert not empty, f"dashboard panels without data on the node: {empty}"
