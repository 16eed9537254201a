"""The metric probes against a real Prometheus (the lab's pinned build) scraping, every second,
a loopback exporter that plays Serve's proxies and KubeRay's operator: counters that grow,
fail, restart at 0, stop or vanish as a proxy's do when its pod dies."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosraysvc.activities import metric_probes
from chaosraysvc.runtime.ports import free_port
from tests.support.polling import wait_for
from tests.support.promstack import running_prometheus, static_job, targets_up

pytestmark = pytest.mark.apiserver  # needs the lab's Go builds (`make controlplane`), not root

HOST = "127.0.0.1"
T0 = time.monotonic()
Series = Callable[[float], list[str]]  # seconds since T0 -> exposition lines


def _now() -> float:
    return time.monotonic() - T0


def counter(name: str, labels: str, per_s: float, since: float = 0.0,
            until: float = 1e9, restart_at: float = 1e9) -> Series:  # fmt: skip
    """A counter growing `per_s` from `since`, frozen after `until`, restarting at 0 at
    `restart_at` (a new proxy of the same address)."""

    def lines(t: float) -> list[str]:
        if t < since:
            return []
        start = restart_at if t >= restart_at else since
        value = per_s * (min(t, until) - start) + 1.0
        return [f"{name}{{{labels}}} {value:.3f}"]

    return lines


class Exporter:
    """Serves what its series say now, as a Ray node's metrics port would."""

    def __init__(self) -> None:
        self.series: list[Series] = []
        self.port = free_port()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                t = _now()
                body = "\n".join(line for s in exporter.series for line in s(t)) + "\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Exporter]]:
    exporter = Exporter()
    job = static_job("ray-pods", f"http://{HOST}:{exporter.port}")
    try:
        with running_prometheus(tmp_path_factory.mktemp("prometheus"), [job], "1s") as url:
            wait_for(lambda: targets_up(url), 30, what="Prometheus to scrape the exporter")
            yield url, exporter
    finally:
        exporter.server.shutdown()


def _config(url: str) -> dict[str, Any]:
    return {"prometheus_base_url": url, "rayservice_name": "svc", "rayservice_namespace": "ns"}


REQ = "ray_serve_num_http_requests_total"
ERR = "ray_serve_num_http_error_requests_total"


def _req(app: str, node: str, status: str, route: str = "/x") -> str:
    return f'NodeAddress="{node}",application="{app}",route="{route}",status_code="{status}"'


def _err(app: str, node: str, code: str, route: str = "/x") -> str:
    return f'NodeAddress="{node}",application="{app}",route="{route}",error_code="{code}"'


def test_the_error_ratio_counts_5xx_of_every_proxy_not_404s_or_health_checks(
    prometheus: tuple[str, Exporter],
) -> None:
    url, exporter = prometheus
    t = _now()
    exporter.series += [
        counter(REQ, _req("ratio", "n1", "200"), 10, since=t),
        counter(REQ, _req("ratio", "n2", "503"), 2, since=t),
        counter(ERR, _err("ratio", "n2", "503"), 2, since=t),
        counter(REQ, _req("ratio", "n1", "404"), 4, since=t),
        counter(ERR, _err("ratio", "n1", "404"), 4, since=t),
        counter(REQ, _req("ratio", "n1", "200", "/-/healthz"), 50, since=t),
    ]
    time.sleep(6)
    ratio = metric_probes.serve_error_ratio(window=5, application="ratio",
                                            configuration=_config(url))  # fmt: skip
    assert ratio == pytest.approx(2 / 16, abs=0.02)  # 503s of all requests, /-/ left out
    with_404 = metric_probes.serve_error_ratio(window=5, application="ratio", error_codes="[45]..",
                                               configuration=_config(url))  # fmt: skip
    assert with_404 == pytest.approx(6 / 16, abs=0.03)
    rate = metric_probes.serve_request_rate(window=5, application="ratio",
                                            configuration=_config(url))  # fmt: skip
    assert rate == pytest.approx(16, rel=0.2)


def test_no_request_counted_is_no_verdict_not_a_pass(prometheus: tuple[str, Exporter]) -> None:
    url, _ = prometheus
    with pytest.raises(ActivityFailed, match="counted no request in the last 5 s"):
        metric_probes.serve_error_ratio(window=5, application="nobody", configuration=_config(url))
    with pytest.raises(ActivityFailed, match="set `prometheus_base_url`"):
        metric_probes.serve_error_ratio(window=5, configuration={})
    with pytest.raises(ActivityFailed, match=f"Prometheus at http://{HOST}:1 did not answer"):
        metric_probes.serve_error_ratio(window=5, configuration=_config(f"http://{HOST}:1"))
    with pytest.raises(ActivityFailed, match="`window` must be"):
        metric_probes.serve_error_ratio(window=0, configuration=_config(url))


def test_a_restarted_proxy_counter_and_a_vanished_one_read_as_serve_counted_them(
    prometheus: tuple[str, Exporter],
) -> None:
    url, exporter = prometheus
    t = _now()
    exporter.series += [
        # the head's proxy: its pod dies at t+4 (its series vanishes), a new one counts from t+5
        counter(REQ, _req("restart", "head", "200"), 10, since=t, until=t + 4),
        counter(REQ, _req("restart", "head2", "200"), 10, since=t + 5),
        # a worker's proxy restarting in place: its counter starts again at 0
        counter(REQ, _req("restart", "w1", "200"), 10, since=t, restart_at=t + 4),
    ]
    vanish = exporter.series[-3]
    exporter.series[-3] = lambda now: vanish(now) if now < t + 4 else []
    time.sleep(10)
    rate = metric_probes.serve_request_rate(window=9, application="restart",
                                            configuration=_config(url))  # fmt: skip
    # 20/s were served all along but 1 s had no head proxy: about 19/s; the reset did not make
    # the rate negative or double it; what each proxy counted after its last scrape is lost
    assert 12 < rate < 21, rate
    assert metric_probes.serve_error_ratio(window=9, application="restart",
                                           configuration=_config(url)) == 0.0  # fmt: skip


def test_a_rate_that_stops_reads_as_a_drop_from_its_baseline(
    prometheus: tuple[str, Exporter],
) -> None:
    url, exporter = prometheus
    t = _now()
    exporter.series += [counter(REQ, _req("drop", "n1", "200"), 10, since=t, until=t + 8)]
    time.sleep(7)
    steady = metric_probes.serve_request_rate_change(window=3, baseline=3, application="drop",
                                                     configuration=_config(url))  # fmt: skip
    assert abs(steady) < 25, steady
    time.sleep(7)  # the counter froze at t+8: nothing counted since
    dropped = metric_probes.serve_request_rate_change(window=4, baseline=4, application="drop",
                                                      configuration=_config(url))  # fmt: skip
    assert dropped < -75, dropped


def test_kuberay_not_ready_at_one_scrape_fails_the_window(
    prometheus: tuple[str, Exporter],
) -> None:
    url, exporter = prometheus
    t = _now()
    name = "kuberay_service_condition_ready"
    labels = 'name="svc",namespace="ns",uid="u1",condition="{}"'

    def ready(now: float) -> list[str]:  # Ready, not Ready from t+3 to t+5, Ready again
        state = "false" if t + 3 <= now < t + 5 else "true"
        return [f"{name}{{{labels.format(state)}}} 1"]

    exporter.series.append(ready)
    time.sleep(7)
    assert metric_probes.rayservice_ready_throughout(window=6, configuration=_config(url)) is False
    time.sleep(4)  # the "false" series went stale at t+5
    assert metric_probes.rayservice_ready_throughout(window=3, configuration=_config(url)) is True
    with pytest.raises(ActivityFailed, match="KubeRay reported nothing for RayService ns/other"):
        metric_probes.rayservice_ready_throughout(
            window=3, configuration={**_config(url), "rayservice_name": "other"}
        )


def _journal(start: float, fault: float, recovered: float, end: float) -> dict[str, Any]:
    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).isoformat()

    output = {"deleted": {"name": "head-x", "role": "head"}, "deleted_at": fault,
              "target": "kubernetes", "recovery": {"recovered": True, "new_pod": "head-y",
              "at": {"pod_ready": recovered - 1, "applications_running": recovered}}}  # fmt: skip
    action = {"activity": {"type": "action", "name": "delete-head-pod",
                           "provider": {"type": "python", "func": "delete_head_pod",
                                        "module": "chaosraysvc.activities.pod_actions"}},
              "status": "succeeded", "start": iso(fault - 0.1), "end": iso(recovered),
              "output": output}  # fmt: skip
    return {"start": iso(start), "end": iso(end), "status": "completed", "run": [action],
            "steady_states": {}, "extensions": [{"name": "chaosraysvc"}]}  # fmt: skip


def test_the_serve_metrics_control_records_each_phase_as_serve_counted_it(
    prometheus: tuple[str, Exporter], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chaosraysvc.controls import serve_metrics
    from chaosraysvc.report.figures import run_figures
    from chaosraysvc.report.load import RunInput
    from chaosraysvc.report.render import render_html, render_markdown

    url, exporter = prometheus
    monkeypatch.setattr(serve_metrics, "BEFORE_S", 4.0)  # the other tests' series before that
    exporter.series[:] = []  # the other tests' series end here: none in the phases below (an
    time.sleep(6)  # error series born in a phase has its first value counted in that phase)
    t, wall = _now(), time.time()
    # 10 answers/s all along; 5 errors/s from 4 s to 8 s (the outage); the other tests'
    # series gone (stale at once: the control counts every application)
    # the errors begin just after the fault (+4 s), its phase shifted by the lag (0.5 s): the
    # first error's series is born in the outage, where its first value is counted
    exporter.series[:] = [
        counter(REQ, _req("view", "n1", "200"), 10, since=t),
        counter(REQ, _req("view", "n1", "503"), 5, since=t + 4.6, until=t + 8),
        counter(ERR, _err("view", "n1", "503"), 5, since=t + 4.6, until=t + 8),
    ]
    time.sleep(14)
    journal = _journal(wall, wall + 4, wall + 8, wall + 12)
    serve_metrics.after_experiment_control({}, state=journal, configuration={
        "prometheus_base_url": url, "serve_metrics_lag": 0.5})  # fmt: skip
    view = journal["extensions"][0]["serve_metrics"]
    phases = {row["phase"]: row for row in view["phases"]}
    assert list(phases) == ["before", "outage", "after"], view
    assert phases["before"]["errors"] == 0 and phases["after"]["errors"] == 0, view
    assert 10 <= phases["outage"]["errors"] <= 30, view  # 5/s for 4 s, to a scrape
    assert phases["outage"]["error_ratio"] > 0.15, view
    assert 25 <= phases["before"]["requests"] <= 55, view  # 10/s for 4 s, to a scrape

    figures = run_figures(RunInput(journal_path=tmp_path / "journal.json", journal=journal))
    assert figures.to_json()["serve_metrics"]["phases"][1]["phase"] == "outage"
    text = render_markdown([figures], [None])
    assert "Serve's own view" in render_html([figures], [None])
    assert "**Serve's own view** (Prometheus at" in text and "| outage | " in text, text

    # no URL: nothing recorded; an unreachable one: the error, not a failed run
    quiet = _journal(wall, wall + 4, wall + 8, wall + 12)
    serve_metrics.after_experiment_control({}, state=quiet, configuration={})
    assert "serve_metrics" not in quiet["extensions"][0]
    serve_metrics.after_experiment_control({}, state=quiet, configuration={
        "prometheus_base_url": f"http://{HOST}:1", "serve_metrics_lag": 1})  # fmt: skip
    assert "did not answer" in quiet["extensions"][0]["serve_metrics"]["error"]


def test_the_lowest_span_shows_a_hole_that_the_mean_rate_dilutes(
    prometheus: tuple[str, Exporter],
) -> None:
    url, exporter = prometheus
    t = _now()

    def holed(now: float) -> list[str]:  # 10/s, nothing answered from t+8 to t+13, 10/s again
        if now < t:
            return []
        value = 10 * (min(now, t + 8) - t) + 10 * max(0.0, now - (t + 13)) + 1
        return [f"{REQ}{{{_req('hole', 'n1', '200')}}} {value:.3f}"]

    exporter.series.append(holed)
    time.sleep(21)
    args = {"window": 12, "baseline": 6, "application": "hole", "configuration": _config(url)}
    mean = metric_probes.serve_request_rate_change(**args)
    worst = metric_probes.serve_request_rate_change(worst_span=3, **args)
    assert -75 < mean < 0, mean  # about -40 %: the hole is 5 s of 12
    assert worst < -75, worst  # some 3 s without an answer
    with pytest.raises(ActivityFailed, match="`worst_span` must be 0 or 1 s to the window"):
        metric_probes.serve_request_rate_change(worst_span=30, **args)


def test_the_lowest_span_sees_an_outage_in_which_every_proxy_was_gone(
    prometheus: tuple[str, Exporter],
) -> None:
    """The only proxy dies (its series vanish) and a new one (a new head) counts from 0 after
    6 s: at those steps no series exists at all, which is a rate of 0, not a step to skip."""
    url, exporter = prometheus
    t = _now()
    exporter.series += [
        counter(REQ, _req("gone", "old-head", "200"), 10, since=t, until=t + 8, restart_at=1e9),
    ]
    old = exporter.series[-1]
    exporter.series[-1] = lambda now: old(now) if now < t + 8 else []
    exporter.series.append(counter(REQ, _req("gone", "new-head", "200"), 10, since=t + 14))
    time.sleep(22)
    args = {"window": 14, "baseline": 6, "application": "gone", "configuration": _config(url)}
    worst = metric_probes.serve_request_rate_change(worst_span=3, **args)
    assert worst <= -95, worst  # some 3 s with no proxy at all


def test_a_proxy_s_first_errors_count_though_their_series_is_born_at_its_count(
    prometheus: tuple[str, Exporter],
) -> None:
    """A proxy answers 3 requests with 503 between two exports, then no more: its error series
    is born at 3 and stays there, which `increase()` alone counts as 0."""
    url, exporter = prometheus
    t = _now()
    exporter.series.append(counter(REQ, _req("burst", "n1", "200"), 10, since=t))
    exporter.series.append(
        lambda now: [f"{ERR}{{{_err('burst', 'n1', '503')}}} 3"] if now >= t + 4 else []
    )
    time.sleep(8)
    ratio = metric_probes.serve_error_ratio(
        window=7, application="burst", configuration=_config(url)
    )
    assert ratio > 0, ratio  # 3 of ~70
