"""The node's Prometheus: upstream's server (3.16.0, `lab/prometheus/`), scraping the Ray pods.

`KubeNode.up()` starts it after the control plane, as a host process of the node like the
API server (a cluster's Prometheus is a pod; what it scrapes and how it finds it are the same):

- job `ray-pods`: Kubernetes service discovery (`role: pod`, as user `prometheus` bound to the
  ClusterRole below, the one Prometheus' Helm chart gives its server), keeping the containers'
  ports named `metrics` of the pods labelled `ray.io/is-ray-node: yes`: what KubeRay's
  documentation's PodMonitor for Ray selects (KubeRay names the port `metrics`, 8080, and
  passes `--metrics-export-port=8080` to `ray start`). Each scraped series gets the pod's
  `namespace`, `pod`, `ray_io_cluster` and `ray_io_node_type` labels.
- job `kuberay-operator`: the operator's `/metrics` (`--enable-metrics`: the `kuberay_*`
  series, among them `kuberay_service_condition_ready`).
- job `pushgateway` (`honor_labels`, as a Pushgateway is scraped): upstream's Pushgateway
  (1.11.5, `lab/pushgateway/`) on port 9091 of the same address, where the metrics control
  (`chaosraysvc.controls.metrics`) pushes each run's figures; the node's settings name it
  (`RAYSVC_METRICS_PUSHGATEWAY`). The Grafana dashboard in deploy/grafana/ reads both.

It listens on the node's address (the bridge's: the host and the pods reach it), keeps its
data under the node's state directory and is ended by `KubeNode.down()`. The scrape interval
is the node's `--prometheus-scrape-interval` (15 s by default: a common production setting,
and what docs/metrics.md measures as the shortest failure it can see).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from chaosraysvc_lab import kubeconfig

USER = "prometheus"
PORT = 9090
PUSHGATEWAY_PORT = 9091
# The server's ClusterRole of Prometheus' Helm chart (prometheus-community/prometheus,
# templates/clusterrole.yaml), reduced to what service discovery of pods needs.
CLUSTER_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": USER},
    "rules": [
        {
            "apiGroups": [""],
            "resources": ["nodes", "services", "endpoints", "pods"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["get", "list", "watch"],
        },
        {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
    ],
}


def install_rbac(api: Any) -> None:
    """Create (or keep) the ClusterRole above and bind user `prometheus` to it."""
    kubeconfig.bind_cluster_role(api, USER, CLUSTER_ROLE)


def config(
    kubeconfig: Path, interval: float, operator_target: str = "", pushgateway_target: str = ""
) -> dict[str, Any]:
    """Return Prometheus' configuration: the Ray pods' metrics ports found through the API
    server with `kubeconfig`, the operator's `/metrics` at `operator_target` (host:port) and
    the Pushgateway at `pushgateway_target` (its pushed labels kept: `honor_labels`)."""
    every = f"{interval:g}s"
    ray_pods = {
        "job_name": "ray-pods",
        "kubernetes_sd_configs": [{"role": "pod", "kubeconfig_file": str(kubeconfig)}],
        "relabel_configs": [
            {
                "source_labels": ["__meta_kubernetes_pod_label_ray_io_is_ray_node"],
                "regex": "yes",
                "action": "keep",
            },
            {
                "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                "regex": "metrics",
                "action": "keep",
            },
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {
                "source_labels": ["__meta_kubernetes_pod_label_ray_io_cluster"],
                "target_label": "ray_io_cluster",
            },
            {
                "source_labels": ["__meta_kubernetes_pod_label_ray_io_node_type"],
                "target_label": "ray_io_node_type",
            },
        ],
    }
    jobs: list[dict[str, Any]] = [ray_pods]
    if operator_target:
        jobs.append(
            {"job_name": "kuberay-operator", "static_configs": [{"targets": [operator_target]}]}
        )
    if pushgateway_target:
        jobs.append(
            {
                "job_name": "pushgateway",
                "honor_labels": True,
                "static_configs": [{"targets": [pushgateway_target]}],
            }
        )
    return {
        "global": {
            "scrape_interval": every,
            "evaluation_interval": every,
            "scrape_timeout": f"{min(interval, 10):g}s",
        },  # fmt: skip
        "scrape_configs": jobs,
    }


def write_config(path: Path, settings: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


def command(binary: Path, config_file: Path, data_dir: Path, address: str) -> list[str]:
    """Return Prometheus' command line: listening on `address`:9090, data in `data_dir`."""
    return [
        str(binary),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={data_dir}",
        "--storage.tsdb.retention.time=2d",
        f"--web.listen-address={address}:{PORT}",
        "--log.level=info",
    ]


def pushgateway_command(binary: Path, data_dir: Path, address: str) -> list[str]:
    """Return the Pushgateway's command line: on `address`:9091, what was pushed kept in
    `data_dir` (written every minute and at exit, read back at start)."""
    return [
        str(binary),
        f"--web.listen-address={address}:{PUSHGATEWAY_PORT}",
        f"--persistence.file={data_dir / 'pushed.metrics'}",
        "--log.level=info",
    ]


def url_of(address: str) -> str:
    return f"http://{address}:{PORT}"


def pushgateway_url_of(address: str) -> str:
    return f"http://{address}:{PUSHGATEWAY_PORT}"


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as answer:
        return json.loads(answer.read()) if answer.status == 200 else None


def ready(url: str) -> bool:
    """Tell whether Prometheus (or the Pushgateway) answers `/-/ready`."""
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as answer:
            return bool(answer.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def targets(url: str) -> list[dict[str, Any]]:
    """Return the active targets as `/api/v1/targets` lists them ([] when it cannot say)."""
    try:
        found = _get(f"{url}/api/v1/targets?state=active")
    except (OSError, urllib.error.URLError, ValueError):
        return []
    return list(((found or {}).get("data") or {}).get("activeTargets") or [])


def target_up(url: str, job: str) -> bool:
    """Tell whether a target of `job` is scraped and up."""
    return any(t.get("scrapePool") == job and t.get("health") == "up" for t in targets(url))


def ray_targets_up(url: str, pods: int) -> bool:
    """Tell whether at least `pods` Ray pods are scraped and up."""
    up = [t for t in targets(url) if t.get("scrapePool") == "ray-pods" and t.get("health") == "up"]
    return len(up) >= pods
