"""The real KubeRay operator (pinned v1.5.0) reconciles KubeRay's published HA sample.

A control plane of its own (the session's serves seeded objects the operator must not touch).
No kubelet runs here: pods stay Pending, which is enough to see what the operator creates and
that it replaces a deleted pod.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, utils

from chaosraysvc_lab import binaries, kubeconfig
from chaosraysvc_lab.controlplane import ControlPlane
from tests.support.polling import wait_for

pytestmark = pytest.mark.apiserver

NS = "default"


@pytest.fixture(scope="module")
def operated() -> Iterator[client.ApiClient]:
    state_dir = Path(tempfile.mkdtemp(prefix="crs-op-"))
    plane = ControlPlane(state_dir)
    try:
        plane.up(operator=True)
        api = kubeconfig.api_client(plane.kubeconfig)
        sample = binaries.binary_dir(build=False) / "samples" / "ray-service.high-availability.yaml"
        for doc in (d for d in yaml.safe_load_all(sample.read_text()) if d):
            if doc["kind"] == "RayService":
                client.CustomObjectsApi(api).create_namespaced_custom_object(
                    "ray.io", "v1", NS, "rayservices", doc
                )
            else:
                utils.create_from_dict(api, doc, namespace=NS)
        yield api
    finally:
        result = plane.down()
        shutil.rmtree(state_dir, ignore_errors=True)
        assert not result.leftovers


def _ray_pods(api: client.ApiClient) -> list[Any]:
    return list(
        client.CoreV1Api(api).list_namespaced_pod(NS, label_selector="ray.io/is-ray-node=yes").items
    )


def test_the_operator_creates_the_cluster_its_pods_and_services(
    operated: client.ApiClient, kube_env: Path
) -> None:
    pods = wait_for(
        lambda: len(_ray_pods(operated)) == 3 and _ray_pods(operated),
        60,
        what="the operator to create a head and two workers",
    )

    roles = sorted(p.metadata.labels["ray.io/node-type"] for p in pods)
    assert roles == ["head", "worker", "worker"]
    service = client.CustomObjectsApi(operated).get_namespaced_custom_object(
        "ray.io", "v1", NS, "rayservices", "rayservice-ha"
    )
    cluster = pods[0].metadata.labels["ray.io/cluster"]
    assert cluster.startswith("rayservice-ha-")
    assert (service.get("status") or {}).get("pendingServiceStatus", {}).get(
        "rayClusterName"
    ) == cluster  # not serving yet: no kubelet runs the pods
    head = next(p for p in pods if p.metadata.labels["ray.io/node-type"] == "head")
    env = {e.name: e for e in head.spec.containers[0].env}
    assert env["RAY_REDIS_ADDRESS"].value == "redis:6379"
    assert env["REDIS_PASSWORD"].value_from.secret_key_ref.name == "redis-password-secret"
    services = client.CoreV1Api(operated).list_namespaced_service(NS).items
    assert f"{cluster}-head-svc" in {s.metadata.name for s in services}


def test_the_operator_replaces_a_deleted_worker_pod(operated: client.ApiClient) -> None:
    wait_for(lambda: len(_ray_pods(operated)) == 3, 60, what="three Ray pods")
    core = client.CoreV1Api(operated)
    worker = next(
        p for p in _ray_pods(operated) if p.metadata.labels["ray.io/node-type"] == "worker"
    )

    core.delete_namespaced_pod(worker.metadata.name, NS, grace_period_seconds=0)

    def replaced() -> list[Any]:
        workers = [
            p for p in _ray_pods(operated) if p.metadata.labels["ray.io/node-type"] == "worker"
        ]
        names = {p.metadata.name for p in workers}
        return workers if len(workers) == 2 and worker.metadata.name not in names else []

    workers = wait_for(replaced, 30, what="the operator to create a new worker pod")
    assert all(p.metadata.uid != worker.metadata.uid for p in workers)
