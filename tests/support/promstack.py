"""The lab's real Prometheus and Pushgateway (its pinned Go builds) on loopback, for tests; and
the Grafana dashboard's queries (deploy/grafana/) as Prometheus would be asked them.

    with running_pushgateway(folder) as gateway, running_prometheus(folder, [job]) as url:
        ...

Each program runs in a session of its own and is ended (SIGTERM, then SIGKILL) on exit,
even when the test fails; its log is in `folder`.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
import yaml

from chaosraysvc.runtime.ports import free_port
from tests.support.polling import wait_for

HOST = "127.0.0.1"
DASHBOARD = (
    Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "chaosraysvc-dashboard.json"
)


@contextmanager
def _running(cmd: list[str], log_path: Path, url: str, what: str) -> Iterator[str]:
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: _ready(url) or proc.poll() is not None, 30, what=f"{what} to answer")
        assert proc.poll() is None, f"{what} exited: {log_path.read_text()[-2000:]}"
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/-/ready", timeout=1).status_code == 200
    except requests.RequestException:
        return False


@contextmanager
def running_pushgateway(folder: Path) -> Iterator[str]:
    """The Pushgateway (lab/pushgateway/) on a free loopback port; yields its URL."""
    from chaosraysvc_lab import binaries

    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [str(binaries.pushgateway_binary()), f"--web.listen-address={HOST}:{port}"]
    with _running(cmd, folder / "pushgateway.log", f"http://{HOST}:{port}", "the Pushgateway"):
        yield f"http://{HOST}:{port}"


@contextmanager
def running_prometheus(
    folder: Path, jobs: list[dict[str, Any]], interval: str = "1s"
) -> Iterator[str]:
    """Prometheus (lab/prometheus/) scraping `jobs` (scrape_configs) every `interval`."""
    from chaosraysvc_lab import binaries

    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {"scrape_interval": interval, "scrape_timeout": interval},
        "scrape_configs": jobs,
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    cmd = [
        str(binaries.prometheus_binary()),
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address={HOST}:{port}",
    ]
    with _running(cmd, folder / "prometheus.log", f"http://{HOST}:{port}", "Prometheus") as url:
        yield url


def static_job(name: str, target_url: str, honor_labels: bool = False) -> dict[str, Any]:
    """A scrape job of one `http://host:port` target."""
    job: dict[str, Any] = {
        "job_name": name,
        "static_configs": [{"targets": [target_url.split("://", 1)[-1]]}],
    }
    if honor_labels:
        job["honor_labels"] = True
    return job


def targets_up(url: str) -> bool:
    found = requests.get(f"{url}/api/v1/targets", timeout=2).json()["data"]["activeTargets"]
    return bool(found) and all(t["health"] == "up" for t in found)


def instant(url: str, expr: str) -> list[dict[str, Any]]:
    """The result of an instant query (raises on Prometheus' error, naming the query)."""
    answer = requests.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", f"{expr}: {answer.get('error')}"
    return list(answer["data"]["result"])


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_queries(
    variables: dict[str, str], rate_interval: str, time_range: str
) -> list[tuple[str, str]]:
    """Every query of the dashboard (its panels' targets and its annotations) as Prometheus
    is asked it: (where, PromQL), the template variables replaced by `variables` and
    Grafana's `$__rate_interval`/`$__interval` by `rate_interval`, `$__range` by
    `time_range`. A variable the dashboard uses but `variables` lacks fails."""
    found: list[tuple[str, str]] = []
    board = dashboard()
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            found.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    for note in board["annotations"]["list"]:
        if note.get("expr"):
            found.append((f"annotation {note['name']!r}", note["expr"]))
    grafana = {"__rate_interval": rate_interval, "__interval": rate_interval,
               "__range": time_range}  # fmt: skip

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        known = grafana | variables
        assert name in known, f"the dashboard uses ${name}, which the test does not set"
        return known[name]

    pattern = re.compile(r"\$\{(\w+)\}|\$(\w+)")
    return [(where, pattern.sub(substitute, expr)) for where, expr in found]
