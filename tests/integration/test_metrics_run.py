"""A scheduled-style `chaos --settings ... run`: its metrics pushed to a real Pushgateway,
scraped by a real Prometheus, and read back there and through the Grafana dashboard (no Ray).

The service is a loopback HTTP server that answers the traffic control's requests and,
between `/control/fail` and `/control/ok`, fails them with 503; the experiment marks a
fault and the recovery milestones in the traffic log (as the delete actions do), so the
run deviates with a failure window and every milestone. The Pushgateway and Prometheus are
the lab's pinned builds (`make controlplane`). The settings file is the CronJob's (its
ConfigMap in deploy/cronjob.yaml): the metrics control declared there runs its
after-experiment hook before the experiment's traffic control, and must still publish
the traffic's figures. The same settings file's `notifications` (pointed at the loopback
server) post the deviated run, whose journal carries the report's summary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosraysvc.report.figures import run_figures
from chaosraysvc.report.load import load_run
from tests.support.deploy import cronjob_settings
from tests.support.loopback import LoopbackServer, QuietHandler
from tests.support.polling import wait_for
from tests.support.prometheus import expected_samples, samples
from tests.support.promstack import (
    dashboard_queries,
    instant,
    running_prometheus,
    running_pushgateway,
    static_job,
    targets_up,
)

pytestmark = pytest.mark.apiserver  # the lab's Go builds (`make controlplane`), not root

CHAOS = Path(sys.executable).parent / "chaos"
TITLE = "A loopback service fails for a moment"
LABELS = {"experiment": TITLE, "rayservice": "rs-loop", "namespace": "loop", "target": "kubernetes"}


@dataclass
class Loopback:
    """The service and the webhook receiver, on one loopback port; the real Pushgateway and
    the Prometheus that scrapes it."""

    url: str
    failing: bool = False
    hooks: list[dict[str, Any]] = field(default_factory=list)
    pushgateway: str = ""
    prometheus: str = ""


@pytest.fixture(scope="module")
def loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loopback]:
    lb = Loopback(url="")

    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            body = self.body()
            if self.path == "/hook":
                lb.hooks.append(json.loads(body))
                self.answer(200)
            elif self.path.startswith("/control/"):
                lb.failing = self.path == "/control/fail"
                self.answer(200, b"ok")
            else:
                self.answer(503, b"down") if lb.failing else self.answer(200, b"12")

        do_GET = do_POST = do_PUT = _handle

    folder = tmp_path_factory.mktemp("promstack")
    with LoopbackServer(Handler) as server, running_pushgateway(folder) as gateway:
        job = static_job("pushgateway", gateway, honor_labels=True)
        with running_prometheus(folder, [job]) as prometheus:
            wait_for(lambda: targets_up(prometheus), 30, what="Prometheus to scrape the gateway")
            lb.url, lb.pushgateway, lb.prometheus = server.url, gateway, prometheus
            yield lb


def _mark(event: str, before: float, **detail: Any) -> dict[str, Any]:
    return {
        "type": "action",
        "name": f"mark-{event}",
        "provider": {
            "type": "python",
            "module": "chaosraysvc.traffic.registry",
            "func": "mark",
            "arguments": {"event": event, **detail},
        },
        "pauses": {"before": before},
    }


def experiment(service: str) -> dict[str, Any]:
    """Return an experiment that deviates: requests fail for ~0.6 s after a marked fault."""
    return {
        "title": TITLE,
        "description": "Metrics and notifications of a deviated run, without Ray.",
        "configuration": {
            "raysvc_target": "kubernetes",
            "rayservice_name": "rs-loop",
            "rayservice_namespace": "loop",
        },
        "controls": [
            {
                "name": "traffic",
                "provider": {
                    "type": "python",
                    "module": "chaosraysvc.controls.traffic",
                    "arguments": {"url": service, "mode": "rate", "rate": 50, "concurrency": 4},
                },
            }
        ],
        "steady-state-hypothesis": {
            "title": "No request failed",
            "probes": [
                {
                    "type": "probe",
                    "name": "zero-failed-requests",
                    "tolerance": 0,
                    "provider": {
                        "type": "python",
                        "module": "chaosraysvc.activities.traffic_probes",
                        "func": "traffic_failures",
                    },
                }
            ],
        },
        "method": [
            _mark("fault", 1.5, pod="rs-loop-head-abcde", role="head", action="simulated"),
            {
                "type": "action",
                "name": "service-fails",
                "provider": {"type": "http", "url": f"{service}/control/fail", "timeout": 2},
                "pauses": {"after": 0.6},
            },
            {
                "type": "action",
                "name": "service-answers",
                "provider": {"type": "http", "url": f"{service}/control/ok", "timeout": 2},
            },
            _mark("pod_ready", 0.3, pod="rs-loop-head-fghij", role="head"),
            _mark("endpoints_restored", 0.3, endpoints=3),
            _mark("applications_running", 0.3) | {"pauses": {"before": 0.3, "after": 1.0}},
        ],
        "rollbacks": [],
    }


def chaos_run(folder: Path, lb: Loopback, settings: dict[str, Any]) -> tuple[dict, Path, str]:  # type: ignore[type-arg]
    """Run the experiment with `settings` as the CronJob does; return journal, path, log."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "experiment.json").write_text(json.dumps(experiment(lb.url)))
    (folder / "settings.yaml").write_text(yaml.safe_dump(settings))
    env = dict(os.environ) | {"RAYSVC_METRICS_PUSHGATEWAY": lb.pushgateway}
    cmd = [str(CHAOS), "--no-version-check", "--settings", str(folder / "settings.yaml")]
    cmd += ["--log-file", str(folder / "chaostoolkit.log"), "run"]
    cmd += ["--journal-path", str(folder / "journal.json"), str(folder / "experiment.json")]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    print(f"chaos run took {time.monotonic() - started:.1f} s, exit {proc.returncode}")
    print(proc.stdout[-3000:], proc.stderr[-3000:])
    assert proc.returncode == 1, "a deviated run exits 1"
    journal = folder / "journal.json"
    return json.loads(journal.read_text()), journal, (folder / "chaostoolkit.log").read_text()


@dataclass
class Run:
    journal: dict[str, Any]
    path: Path
    log: str
    groups: list[dict[str, Any]]  # what the Pushgateway holds after the run (its API)
    exposed: str  # the run's samples as the Pushgateway exposes them to Prometheus
    hooks: list[dict[str, Any]]

    def journal_failures(self) -> float:
        report = next(e for e in self.journal["extensions"] if e["name"] == "chaosraysvc")
        return float(report["report"]["metrics"]["failed_requests"])


def _pushed(gateway: str) -> tuple[list[dict[str, Any]], str]:
    import requests

    groups = requests.get(f"{gateway}/api/v1/metrics", timeout=5).json()["data"]
    text = requests.get(f"{gateway}/metrics", timeout=5).text
    ours = [line for line in text.splitlines() if "chaosraysvc_run_" in line]
    return groups, "\n".join(ours) + "\n"


@pytest.fixture(scope="module")
def scheduled_run(loopback: Loopback, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Run the experiment once with the CronJob's settings, its webhook pointed here."""
    settings = cronjob_settings()
    [channel] = settings["notifications"]
    channel["url"] = f"{loopback.url}/hook"
    journal, path, log = chaos_run(tmp_path_factory.mktemp("scheduled"), loopback, settings)
    groups, exposed = _pushed(loopback.pushgateway)
    return Run(journal, path, log, groups, exposed, list(loopback.hooks))


def test_a_scheduled_run_pushes_the_figures_of_its_journal(scheduled_run: Run) -> None:
    journal, path, log = scheduled_run.journal, scheduled_run.path, scheduled_run.log
    assert journal["deviated"] is True
    [group] = scheduled_run.groups  # one group: job and the run's labels as its key
    assert group["labels"] == {"job": "chaosraysvc", **LABELS}, group["labels"]
    assert float(group["push_failure_time_seconds"]["metrics"][0]["value"]) == 0
    # the gateway adds the push's job and an empty instance to every sample it exposes
    pushed = samples(scheduled_run.exposed, {"job": "chaosraysvc", "instance": "", **LABELS})
    figures = run_figures(load_run(path)).to_json()  # the report of the journal chaos wrote
    assert pushed == pytest.approx(expected_samples(figures, journal))
    assert pushed[("chaosraysvc_run_deviated", ())] == 1
    assert pushed[("chaosraysvc_run_failed_requests", ())] > 0
    assert pushed[("chaosraysvc_run_requests", ())] > 100
    assert 0.3 < pushed[("chaosraysvc_run_longest_failure_window_seconds", ())] < 2.0
    recovery = {k[1][0][1] for k in pushed if k[0] == "chaosraysvc_run_recovery_seconds"}
    assert recovery == {"pod_ready", "endpoints_restored", "applications_running"}
    report = next(e for e in journal["extensions"] if e["name"] == "chaosraysvc")["report"]
    assert report["outcome"] == "deviated"
    assert report["metrics"]["failed_requests"] == pushed[("chaosraysvc_run_failed_requests", ())]
    [published] = report["published"]
    print(f"push latency in the run: {1000 * published['seconds']:.1f} ms")
    assert f"Pushed the run's metrics to the Pushgateway at {published['pushgateway']}" in log


def test_a_deviated_scheduled_run_posts_its_report_summary_to_the_webhook(
    scheduled_run: Run,
) -> None:
    journal = scheduled_run.journal
    names = [hook["name"] for hook in scheduled_run.hooks]
    # a deviated run's status is "completed": chaos posts run-completed and run-deviated,
    # and the CronJob's settings keep run-deviated (and run-failed) only
    assert journal["status"] == "completed" and names == ["run-deviated"], names
    hook = next(h for h in scheduled_run.hooks if h["name"] == "run-deviated")
    assert hook["phase"] == "run" and isinstance(hook["ts"], float)
    payload = hook["payload"]  # the journal, as chaos wrote it
    assert payload["deviated"] is True and payload["status"] == journal["status"]
    [failed] = [
        p
        for p in payload["steady_states"]["after"]["probes"]
        if p["activity"]["name"] == "zero-failed-requests"
    ]
    assert failed["tolerance_met"] is False and failed["output"] > 0
    summary = next(e for e in payload["extensions"] if e["name"] == "chaosraysvc")["report"]
    assert summary["outcome"] == "deviated"
    assert summary["headline"] == "Deviated: the steady state did not hold after the fault"
    figures = run_figures(load_run(scheduled_run.path))
    assert summary["facts"] == figures.verdict.facts
    traffic = figures.to_json()["traffic"]
    assert f"{traffic['failures']:,} of {traffic['requests']:,} requests failed" in " ".join(
        summary["facts"]
    )
    metrics = summary["metrics"]
    assert (metrics["requests"], metrics["failed_requests"]) == (
        traffic["requests"],
        traffic["failures"],
    )
    assert metrics["deviated"] is True and set(metrics["recovery_s"]) == {
        "pod_ready",
        "endpoints_restored",
        "applications_running",
    }


def _scraped_runs(url: str) -> int:
    """How many distinct run end times Prometheus has scraped from the Pushgateway."""
    found = instant(url, "changes(chaosraysvc_run_end_timestamp_seconds[1h]) + 1")
    return int(float(found[0]["value"][1])) if found else 0


def test_every_query_of_the_dashboard_is_valid_and_its_run_panels_show_the_pushed_runs(
    scheduled_run: Run, loopback: Loopback, tmp_path: Path
) -> None:
    """deploy/grafana/'s dashboard against the Prometheus that scraped the runs' pushes (the
    scheduled run, then a second one): every query parses, and every run panel (the
    chaosraysvc_run_* series) and the runs' annotation have data. Its Serve panels are
    checked with Ray's metrics on the lab's node (test_real_serve_metrics.py)."""
    url = loopback.prometheus
    wait_for(lambda: _scraped_runs(url) == 1, 30, what="a scrape of the first run's push")
    settings = {k: v for k, v in cronjob_settings().items() if k != "notifications"}
    chaos_run(tmp_path / "second", loopback, settings)
    wait_for(lambda: _scraped_runs(url) == 2, 30, what="a scrape of the second run's push")
    variables = {"namespace": "loop", "experiment": ".*", "datasource": "unused"}
    queries = dashboard_queries(variables, rate_interval="1m", time_range="1h")
    runs = [(where, expr) for where, expr in queries if "chaosraysvc_run_" in expr]
    assert len(runs) >= 8, runs  # the run panels and the annotation
    empty = []
    for where, expr in queries:
        found = instant(url, expr)  # fails on a query Prometheus refuses
        print(f"{where}: {len(found)} series, e.g. {found[:1]}")
        if (where, expr) in runs and not found:
            empty.append(where)
    assert not empty, f"run panels without data after two pushed runs: {empty}"
    [latest] = instant(url, dict(queries)["panel 'Latest run of each experiment' A"])
    assert latest["metric"]["outcome"] == "deviated" and latest["metric"]["experiment"] == TITLE
    [runs_seen] = instant(url, dict(queries)["panel 'Runs in the range' A"])
    assert float(runs_seen["value"][1]) == 2, runs_seen
