"""The metrics control: a run's figures pushed to a (stand-in) Pushgateway or a textfile.

The Pushgateway is a real HTTP server on loopback that stores every push; the pushed
body is parsed with prometheus-client's own parser and checked value by value against
the report's figures of the same journal and traffic log.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chaosraysvc.controls import metrics as control
from chaosraysvc.report.figures import RunFigures, run_figures
from chaosraysvc.report.load import load_run
from chaosraysvc.runtime.ports import free_port
from tests.support.loopback import LoopbackServer, QuietHandler
from tests.support.prometheus import Key, expected_samples, samples
from tests.support.report_samples import SECRET, passing_journal, traffic_records, write_run

TITLE = "The Serve service stays up when the Ray head pod is deleted"
LABELS = {
    "experiment": TITLE,
    "rayservice": "rs-live",
    "namespace": "serving",
    "target": "kubernetes",
}


@dataclass
class Gateway:
    """A loopback HTTP server that stores what is pushed, answering `status`."""

    url: str
    pushes: list[tuple[str, str, str]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    gw = Gateway(url="")

    class Handler(QuietHandler):
        def _store(self) -> None:
            gw.pushes.append((self.command, self.path, self.body().decode()))
            self.answer(gw.status)

        do_PUT = do_POST = _store

    with LoopbackServer(Handler) as server:
        gw.url = server.url
        yield gw


def _run(folder: Path) -> tuple[dict[str, Any], RunFigures]:
    """Return a finished run's in-memory journal (as the control gets it) and its report figures."""
    journal = passing_journal()
    journal["end"] = "2027-01-15T08:00:41+00:00"
    path = write_run(folder, journal, traffic_records())
    extension = journal["extensions"][0]
    extension["traffic"]["log"] = str(folder / "journal-traffic.jsonl")
    extension["target"] = {"target": "kubernetes", "rayservice": "rs-live", "namespace": "serving"}
    path.write_text(json.dumps(journal))  # the journal file the report reads
    return journal, run_figures(load_run(path))


def _samples(text: str) -> dict[Key, float]:
    return samples(text, LABELS)


def _expected(figures: RunFigures) -> dict[Key, float]:
    return expected_samples(figures.to_json(), {"end": "2027-01-15T08:00:41+00:00"})


def test_a_run_is_pushed_value_by_value(tmp_path: Path, gateway: Gateway) -> None:
    journal, figures = _run(tmp_path)
    started = time.monotonic()
    control.after_experiment_control(
        journal["experiment"], state=journal, configuration={"metrics_pushgateway_url": gateway.url}
    )
    print(f"control: figures + push took {1000 * (time.monotonic() - started):.1f} ms")
    [(method, path, body)] = gateway.pushes
    assert method == "PUT"  # push_to_gateway replaces the group: one run's figures
    title = base64.urlsafe_b64encode(TITLE.encode()).decode()
    assert path == (
        f"/metrics/job/chaosraysvc/experiment@base64/{title}"
        "/namespace/serving/rayservice/rs-live/target/kubernetes"
    )
    pushed, expected = _samples(body), _expected(figures)
    assert pushed == pytest.approx(expected)
    # the sample run's own numbers, so a report change cannot hide a wrong value
    assert pushed[("chaosraysvc_run_requests", ())] == 800
    assert pushed[("chaosraysvc_run_failed_requests", ())] == 50
    assert pushed[("chaosraysvc_run_longest_failure_window_seconds", ())] == 2.5
    assert pushed[("chaosraysvc_run_deviated", ())] == 0
    recovery = {k[1][0][1]: v for k, v in pushed.items() if "recovery" in k[0]}
    assert recovery == {"pod_ready": 5.0, "endpoints_restored": 10.0, "applications_running": 12.0}
    phases = {k[1][0][1] for k in pushed if "p99" in k[0]}
    assert phases == {"baseline", "outage", "recovery", "after"}
    p99 = {k[1][0][1]: v for k, v in pushed.items() if "p99" in k[0]}
    assert (p99["outage"], p99["recovery"]) == (0.043, 0.083)  # successful requests only
    assert SECRET not in body
    report = journal["extensions"][0]["report"]
    assert report["outcome"] == "passed" and report["headline"].startswith("Passed")
    assert report["published"][0]["pushgateway"] == gateway.url


def test_a_deviated_run_without_recovery_sets_deviated_and_leaves_out_milestones(
    tmp_path: Path, gateway: Gateway
) -> None:
    journal, _ = _run(tmp_path)
    journal.update(deviated=True)
    journal["run"][0].update(output=None, status="failed")
    records = [r for r in traffic_records() if r.get("kind") != "mark" or r["event"] == "fault"]
    (tmp_path / "journal-traffic.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    control.after_experiment_control(
        {}, state=journal, configuration={"metrics_pushgateway_url": gateway.url}
    )
    pushed = _samples(gateway.pushes[0][2])
    assert pushed[("chaosraysvc_run_deviated", ())] == 1
    assert not [k for k in pushed if "recovery" in k[0]]
    assert journal["extensions"][0]["report"]["outcome"] == "deviated"


def test_textfile_for_node_exporter(tmp_path: Path) -> None:
    journal, figures = _run(tmp_path / "run")
    out = tmp_path / "textfile" / "chaosraysvc.prom"
    out.parent.mkdir()
    control.after_experiment_control(
        {}, state=journal, configuration={"metrics_textfile": str(out)}
    )
    assert _samples(out.read_text()) == pytest.approx(_expected(figures))
    assert [p.name for p in out.parent.iterdir()] == ["chaosraysvc.prom"]  # no temp file left


def test_environment_variables_configure_it(
    tmp_path: Path, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal, _ = _run(tmp_path)
    monkeypatch.setenv("RAYSVC_METRICS_PUSHGATEWAY", gateway.url)
    monkeypatch.setenv("RAYSVC_METRICS_JOB", "nightly-head-kill")
    control.after_experiment_control({}, state=journal, configuration={})
    assert gateway.pushes[0][1].startswith("/metrics/job/nightly-head-kill/")


@pytest.mark.parametrize("failure", ["refused", "http_500"])
def test_a_failed_push_is_logged_and_does_not_fail_the_run(
    tmp_path: Path, gateway: Gateway, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    journal, _ = _run(tmp_path)
    url = f"http://127.0.0.1:{free_port()}" if failure == "refused" else gateway.url
    gateway.status = 500
    with caplog.at_level(logging.INFO, logger="chaostoolkit"):
        control.after_experiment_control(
            {}, state=journal, configuration={"metrics_pushgateway_url": url}
        )
    [error] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert f"Pushgateway at {url}" in error
    assert ("Connection refused" if failure == "refused" else "500") in error
    [published] = journal["extensions"][0]["report"]["published"]
    assert published["pushgateway"] == url and "failed" in published["error"]


def test_at_finish_after_every_control_when_chaoslib_gives_an_event_registry(
    tmp_path: Path, gateway: Gateway
) -> None:
    from chaoslib.run import EventHandlerRegistry

    journal, _ = _run(tmp_path)
    events = EventHandlerRegistry()
    conf = {"metrics_pushgateway_url": gateway.url}
    control.configure_control(configuration=conf, event_registry=events)
    control.after_experiment_control({}, state=journal, configuration=conf)
    assert gateway.pushes == []  # the traffic control may not have written the journal yet
    events.finish(journal)
    events.finish(journal)
    assert len(gateway.pushes) == 1
