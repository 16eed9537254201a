"""The target resolves the RayService's active cluster and only its pods, read fresh each call.

Against the real API server: the pods are what the server stores (its UIDs and creation
times), readiness is the status a kubelet writes, and a deletion with a grace period leaves
the pod terminating until its kubelet confirms (there is none here).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.polling import wait_for

from .. import seed
from .conftest import RealCluster, SeedCluster

pytestmark = pytest.mark.apiserver


def test_a_second_raycluster_in_the_namespace_is_never_listed(seed_cluster: SeedCluster) -> None:
    cluster = seed_cluster(wait_slices=False)

    names = {p.name for p in cluster.target().pods()}

    assert names == {seed.HEAD, *seed.WORKERS, seed.REDIS}
    assert {seed.OTHER_HEAD, seed.OTHER_WORKER, seed.QUERY_POD} <= cluster.pod_names()


def test_pod_fields_come_from_the_pod_objects(seed_cluster: SeedCluster) -> None:
    cluster = seed_cluster(wait_slices=False)

    pods = {p.name: p for p in cluster.target().pods()}

    head = pods[seed.HEAD]
    stored = cluster.pod(seed.HEAD)
    assert (head.phase, head.ready) == ("Running", True)
    assert head.uid == stored.metadata.uid
    assert head.created_at == stored.metadata.creation_timestamp.timestamp()
    assert head.address == "198.18.1.10"
    assert head.labels["ray.io/cluster"] == seed.CLUSTER
    assert head.labels["ray.io/node-type"] == "head"
    assert pods[seed.WORKERS[1]].restarts == 1  # sum of containerStatuses[].restartCount
    assert pods[seed.REDIS].labels == {"app": "redis", "pod-template-hash": "6d9b7c5f8"}


def _not_ready_restarted(cluster: RealCluster, name: str, restarts: int) -> None:
    """Write the status a kubelet writes when a container restarted and is not ready yet."""
    pod = cluster.plane.api.sanitize_for_serialization(cluster.pod(name))
    status: dict[str, Any] = pod["status"]
    for condition in status["conditions"]:
        if condition["type"] in ("Ready", "ContainersReady"):
            condition["status"] = "False"
    for container in status["containerStatuses"]:
        container.update(ready=False, restartCount=restarts)
    cluster.loader.write_status(
        "Pod",
        name,
        {"conditions": status["conditions"], "containerStatuses": status["containerStatuses"]},
    )


def test_each_call_reads_fresh_state(seed_cluster: SeedCluster) -> None:
    cluster = seed_cluster(wait_slices=False)
    target = cluster.target()
    assert all(p.ready for p in target.pods())

    _not_ready_restarted(cluster, seed.WORKERS[0], 3)

    worker = next(p for p in target.pods() if p.name == seed.WORKERS[0])
    assert (worker.phase, worker.ready, worker.restarts) == ("Running", False, 3)


def test_a_pod_deleted_with_a_grace_period_is_terminating_and_not_ready(
    seed_cluster: SeedCluster,
) -> None:
    cluster = seed_cluster()
    target = cluster.target()
    worker = next(p for p in target.pods() if p.name == seed.WORKERS[0])

    target.delete_pod(worker, grace_period=30)

    now = {p.name: p for p in target.pods()}
    assert (now[worker.name].phase, now[worker.name].ready) == ("Terminating", False)
    assert now[worker.name].uid == worker.uid  # still there: no kubelet confirmed the end
    ip = seed.IPS[worker.name]
    wait_for(
        lambda: cluster.serve_slice_addresses().get(ip) is False,
        10,
        what="the endpointslice controller to mark the terminating worker not ready",
        state=cluster.serve_slice_addresses,
    )
    assert [e.ready for e in target.serve_endpoints() if e.pod_name == worker.name] == [False]


def test_describe_names_what_is_targeted_and_no_secret(seed_cluster: SeedCluster) -> None:
    cluster = seed_cluster(wait_slices=False)

    info = cluster.target().describe()

    assert info == {
        "target": "kubernetes",
        "rayservice": seed.RAYSERVICE,
        "namespace": cluster.namespace,
        "cluster": seed.CLUSTER,
        "api": cluster.server,
    }
    assert "token" not in str(info).lower()
