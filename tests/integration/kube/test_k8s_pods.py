"""The target resolves the RayService's active cluster and only its pods, read fresh each call."""

from __future__ import annotations

from datetime import datetime

from . import seed
from .conftest import Cluster
from .helpers import patch_object


def test_pods_are_the_active_clusters_head_workers_and_redis(ha: Cluster) -> None:
    pods = ha.target().pods()

    assert [(p.role, p.name) for p in pods] == [
        ("head", seed.HEAD),
        ("worker", seed.WORKERS[0]),
        ("worker", seed.WORKERS[1]),
        ("redis", seed.REDIS),
    ]


def test_a_second_raycluster_in_the_namespace_is_never_listed(ha: Cluster) -> None:
    names = {p.name for p in ha.target().pods()}

    assert {seed.OTHER_HEAD, seed.OTHER_WORKER, seed.QUERY_POD}.isdisjoint(names)
    assert {seed.OTHER_HEAD, seed.OTHER_WORKER} <= ha.pod_names()  # they do exist
    pod_lists = [c.params.get("labelSelector", "") for c in ha.double.calls if c.resource == "pods"]
    assert pod_lists and all(seed.OTHER_CLUSTER not in s for s in pod_lists)
    assert f"ray.io/cluster={seed.CLUSTER},ray.io/node-type in (head,worker)" in pod_lists
    assert "app=redis" in pod_lists  # the redis Service's selector


def test_pod_fields_come_from_the_pod_objects(ha: Cluster) -> None:
    pods = {p.name: p for p in ha.target().pods()}
    head = pods[seed.HEAD]
    stored = ha.server.call(ha.double.get, "v1/pods", seed.NAMESPACE, seed.HEAD)

    assert head.phase == "Running"
    assert head.ready is True
    assert head.uid == stored["metadata"]["uid"]
    assert head.created_at == datetime.fromisoformat("2025-06-02T09:00:00+00:00").timestamp()
    assert head.address == "198.18.1.10"
    assert head.labels["ray.io/cluster"] == seed.CLUSTER
    assert head.labels["ray.io/node-type"] == "head"
    assert pods[seed.WORKERS[1]].restarts == 1  # sum of containerStatuses[].restartCount
    assert pods[seed.REDIS].labels == {"app": "redis", "pod-template-hash": "6d9b7c5f8"}


def test_each_call_reads_fresh_state(ha: Cluster) -> None:
    target = ha.target()
    assert all(p.ready for p in target.pods())

    def not_ready(pod: dict) -> None:
        for condition in pod["status"]["conditions"]:
            if condition["type"] == "Ready":
                condition["status"] = "False"
        pod["status"]["containerStatuses"][0]["restartCount"] = 3

    ha.server.call(patch_object, ha.double, "v1/pods", seed.NAMESPACE, seed.WORKERS[0], not_ready)

    worker = next(p for p in target.pods() if p.name == seed.WORKERS[0])
    assert (worker.phase, worker.ready, worker.restarts) == ("Running", False, 3)


def test_a_pod_being_deleted_is_terminating_and_not_ready(ha: Cluster) -> None:
    def deleting(pod: dict) -> None:
        pod["metadata"]["deletionTimestamp"] = "2025-06-02T10:00:00Z"
        pod["metadata"]["deletionGracePeriodSeconds"] = 30

    ha.server.call(patch_object, ha.double, "v1/pods", seed.NAMESPACE, seed.HEAD, deleting)

    head = next(p for p in ha.target().pods() if p.role == "head")
    assert (head.phase, head.ready) == ("Terminating", False)


def test_describe_names_what_is_targeted_and_no_secret(ha: Cluster) -> None:
    info = ha.target().describe()

    assert info == {
        "target": "kubernetes",
        "rayservice": seed.RAYSERVICE,
        "namespace": seed.NAMESPACE,
        "cluster": seed.CLUSTER,
        "api": ha.server.url,
    }
    assert "token" not in str(info)
