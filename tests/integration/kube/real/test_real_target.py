"""The kubernetes target against the real API server: schemas, controllers, deletion semantics.

What the API double could not show: the seed passes KubeRay's real CRD schemas, the real
endpointslice controller builds the serve Service's slices from pod readiness and labels,
deletions honour UID preconditions, server-side dry run and grace periods as a real server does.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kubernetes import client, utils
from kubernetes.client.exceptions import ApiException

from chaosraysvc.errors import (
    ConfigurationError,
    NotFoundError,
    RefusedError,
    TargetNotReadyError,
)
from chaosraysvc.model import Pod
from chaosraysvc.targets.base import Endpoint, pods_of_role, ready_endpoint_count
from chaosraysvc_lab import binaries
from tests.support.polling import wait_for

from .. import seed
from .conftest import RealCluster, SeedCluster
from .loader import Loader, in_namespace

pytestmark = pytest.mark.apiserver


def test_the_target_lists_the_active_clusters_pods_as_the_server_stores_them(
    seed_cluster: SeedCluster,
) -> None:
    cluster = seed_cluster()

    pods = cluster.target().pods()

    assert [(p.role, p.name) for p in pods] == [
        ("head", seed.HEAD),
        ("worker", seed.WORKERS[0]),
        ("worker", seed.WORKERS[1]),
        ("redis", seed.REDIS),
    ]
    for pod in pods:
        stored = cluster.pod(pod.name)
        assert (pod.uid, pod.address) == (stored.metadata.uid, stored.status.pod_ip)
        assert pod.ready is True and pod.phase == "Running"
    assert pods[2].restarts == 1


def test_serve_endpoints_are_the_ones_the_endpointslice_controller_built(
    seed_cluster: SeedCluster,
) -> None:
    target = seed_cluster().target()

    assert target.serve_endpoints() == [
        Endpoint(seed.HEAD, "http://198.18.1.10:8000", True, "head"),
        Endpoint(seed.WORKERS[0], "http://198.18.1.11:8000", True, "worker"),
        Endpoint(seed.WORKERS[1], "http://198.18.1.12:8000", True, "worker"),
    ]
    assert ready_endpoint_count(target) == 3


def test_a_serve_service_whose_pods_are_all_gone_has_no_endpoints(
    seed_cluster: SeedCluster,
) -> None:
    cluster = seed_cluster()
    for name in (seed.HEAD, *seed.WORKERS):
        cluster.plane.core.delete_namespaced_pod(name, cluster.namespace, grace_period_seconds=0)

    wait_for(
        lambda: cluster.serve_slice_addresses() == {},
        10,
        what="the endpointslice controller to empty the serve Service's slices",
        state=cluster.serve_slice_addresses,
    )

    assert cluster.target().serve_endpoints() == []


def _set_ready(cluster: RealCluster, name: str, ready: bool) -> None:
    pod = cluster.pod(name)
    conditions = [
        {
            "type": c.type,
            "status": ("True" if ready else "False")
            if c.type in ("Ready", "ContainersReady")
            else c.status,
        }
        for c in pod.status.conditions
    ]
    cluster.loader.write_status("Pod", name, {"conditions": conditions})


def test_a_worker_that_turns_not_ready_is_counted_out_by_the_real_controller(
    seed_cluster: SeedCluster,
) -> None:
    cluster = seed_cluster()
    target = cluster.target()

    _set_ready(cluster, seed.WORKERS[0], False)
    wait_for(
        lambda: cluster.serve_slice_addresses().get(seed.IPS[seed.WORKERS[0]]) is False,
        10,
        what="the controller to mark the worker's endpoint not ready",
        state=cluster.serve_slice_addresses,
    )

    assert ready_endpoint_count(target) == 2
    worker = next(e for e in target.serve_endpoints() if e.pod_name == seed.WORKERS[0])
    assert worker.ready is False


def test_a_pod_whose_serve_label_kuberay_removes_leaves_the_serve_service(
    seed_cluster: SeedCluster,
) -> None:
    cluster = seed_cluster()
    core = cluster.plane.core

    core.patch_namespaced_pod(
        seed.HEAD, cluster.namespace, {"metadata": {"labels": {"ray.io/serve": "false"}}}
    )
    wait_for(
        lambda: seed.IPS[seed.HEAD] not in cluster.serve_slice_addresses(),
        10,
        what="the controller to drop the head from the serve Service",
        state=cluster.serve_slice_addresses,
    )

    assert [e.pod_name for e in cluster.target().serve_endpoints()] == list(seed.WORKERS)


def test_a_rayservice_mid_upgrade_has_no_active_cluster_yet(seed_cluster: SeedCluster) -> None:
    cluster = seed_cluster(seed.ha_sample(active=False), wait_slices=False)

    with pytest.raises(TargetNotReadyError, match="no active RayCluster yet") as err:
        cluster.target().pods()
    assert f"RayCluster '{seed.CLUSTER}' is still being prepared" in str(err.value)


def test_a_missing_rayservice_names_itself_and_its_namespace(seed_cluster: SeedCluster) -> None:
    cluster = seed_cluster(wait_slices=False)
    target = cluster.target(rayservice_name="rayservice-nope")

    with pytest.raises(NotFoundError) as err:
        target.pods()

    message = str(err.value)
    assert f"RayService 'rayservice-nope' not found in namespace '{cluster.namespace}'" in message
    assert "rayservice_name" in message  # what to change
    assert isinstance(err.value.__cause__, ApiException) and err.value.__cause__.status == 404
    assert "error" in target.describe()


def test_a_server_side_dry_run_deletes_nothing(seed_cluster: SeedCluster) -> None:
    cluster = seed_cluster(wait_slices=False)
    target = cluster.target()
    worker = pods_of_role(target, "worker")[0]

    target.delete_pod(worker, dry_run=True)

    assert cluster.pod(worker.name).metadata.uid == worker.uid
    assert cluster.pod(worker.name).metadata.deletion_timestamp is None


def test_a_deletion_with_a_grace_period_leaves_the_pod_terminating_for_its_kubelet(
    seed_cluster: SeedCluster,
) -> None:
    cluster = seed_cluster(wait_slices=False)
    target = cluster.target()
    worker = pods_of_role(target, "worker")[0]

    target.delete_pod(worker, grace_period=7)

    stored = cluster.pod(worker.name)
    assert stored.spec.termination_grace_period_seconds == 30  # the pod's own default
    assert stored.metadata.deletion_timestamp is not None
    assert stored.metadata.deletion_grace_period_seconds == 7


def test_a_deletion_without_grace_removes_the_pod_at_once(seed_cluster: SeedCluster) -> None:
    cluster = seed_cluster(wait_slices=False)
    target = cluster.target()
    worker = pods_of_role(target, "worker")[0]

    target.delete_pod(worker)

    with pytest.raises(ApiException) as err:
        cluster.pod(worker.name)
    assert err.value.status == 404


@pytest.mark.parametrize("name", [seed.OTHER_HEAD, seed.OTHER_WORKER, seed.QUERY_POD])
def test_refuses_pods_outside_the_active_cluster_and_its_redis(
    seed_cluster: SeedCluster, name: str
) -> None:
    cluster = seed_cluster(wait_slices=False)
    stored = cluster.pod(name)
    stranger = Pod(
        name=name, role="head", phase="Running", ready=True, uid=stored.metadata.uid, created_at=0.0
    )

    with pytest.raises(RefusedError, match=f"'{name}'.*'{seed.CLUSTER}'"):
        cluster.target().delete_pod(stranger)

    assert cluster.pod(name).metadata.deletion_timestamp is None


def test_a_negative_grace_period_is_a_configuration_error(seed_cluster: SeedCluster) -> None:
    cluster = seed_cluster(wait_slices=False)
    target = cluster.target()
    head = target.pods()[0]

    with pytest.raises(ConfigurationError, match="grace_period"):
        target.delete_pod(head, grace_period=-1)
    assert cluster.pod(head.name).metadata.deletion_timestamp is None


def test_the_redis_pod_deleted_is_replaced_by_its_real_replicaset(
    seed_cluster: SeedCluster,
) -> None:
    cluster = seed_cluster(wait_slices=False)
    apps = client.AppsV1Api(cluster.plane.api)
    labels = {"app": "redis", "pod-template-hash": "6d9b7c5f8"}
    template = seed.redis_pod()["spec"]
    template.pop("nodeName")  # a ReplicaSet's pods are scheduled, not bound in the template
    apps.create_namespaced_replica_set(
        cluster.namespace,
        {
            "metadata": {"name": "redis-6d9b7c5f8", "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": template},
            },
        },
    )
    wait_for(  # the controller adopts the seeded pod: it matches and has no owner
        lambda: cluster.pod(seed.REDIS).metadata.owner_references,
        10,
        what="the ReplicaSet controller to adopt the Redis pod",
    )
    target = cluster.target()
    [redis] = pods_of_role(target, "redis")

    target.delete_pod(redis)

    [new] = wait_for(
        lambda: [p for p in pods_of_role(target, "redis") if p.uid != redis.uid],
        10,
        what="the ReplicaSet controller to create a new Redis pod",
        state=lambda: pods_of_role(target, "redis"),
    )
    assert new.name.startswith("redis-6d9b7c5f8-") and new.name != redis.name
    assert (new.phase, new.ready) == ("Pending", False)  # no scheduler or kubelet runs it here


def _replace(cluster: RealCluster, name: str) -> str:
    """Delete pod `name` and create it again (a new UID), as a StatefulSet-like owner would."""
    core = cluster.plane.core
    core.delete_namespaced_pod(name, cluster.namespace, grace_period_seconds=0)
    pods = [o for o in in_namespace(seed.ha_sample(), cluster.namespace) if o["kind"] == "Pod"]
    body = next(o for o in pods if o["metadata"]["name"] == name)
    created = Loader(cluster.plane.api, cluster.namespace).create(body)
    return str(created["metadata"]["uid"])


def test_the_server_refuses_to_delete_a_pod_replaced_since_it_was_listed(
    seed_cluster: SeedCluster,
) -> None:
    cluster = seed_cluster(wait_slices=False)
    target = cluster.target()
    old = next(p for p in target.pods() if p.name == seed.WORKERS[1])
    new_uid = _replace(cluster, old.name)

    with pytest.raises(RefusedError, match="replaced meanwhile") as err:
        target.api.delete_pod(cluster.namespace, old.name, old.uid, 0, False)
    assert old.uid in str(err.value)
    assert cluster.pod(old.name).metadata.uid == new_uid  # the UID precondition held
    with pytest.raises(RefusedError, match="replaced since it was listed"):
        target.delete_pod(old)


def test_the_real_crd_schema_refuses_an_invalid_rayservice(seed_cluster: SeedCluster) -> None:
    cluster = seed_cluster([], wait_slices=False)
    [body] = in_namespace([seed.rayservice()], cluster.namespace)
    body["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParams"] = "not-a-map"

    with pytest.raises(ApiException) as err:
        Loader(cluster.plane.api, cluster.namespace).create(body)

    assert err.value.status == 422
    assert "spec.rayClusterConfig.headGroupSpec.rayStartParams" in str(err.value.body)


def _published_sample() -> list[dict[str, Any]]:
    sample = binaries.binary_dir(build=False) / "samples" / "ray-service.high-availability.yaml"
    return [doc for doc in yaml.safe_load_all(sample.read_text()) if doc]


def test_kuberays_published_ha_sample_is_accepted_as_written(seed_cluster: SeedCluster) -> None:
    cluster = seed_cluster([], wait_slices=False)
    api = cluster.plane.api
    docs = _published_sample()

    for doc in docs:
        if doc["kind"] == "RayService":
            client.CustomObjectsApi(api).create_namespaced_custom_object(
                "ray.io", "v1", cluster.namespace, "rayservices", doc
            )
        else:
            utils.create_from_dict(api, doc, namespace=cluster.namespace)

    assert sorted(d["kind"] for d in docs) == [
        "ConfigMap",
        "ConfigMap",
        "Deployment",
        "Pod",
        "RayService",
        "Secret",
        "Service",
    ]
    stored = client.CustomObjectsApi(api).get_namespaced_custom_object(
        "ray.io", "v1", cluster.namespace, "rayservices", "rayservice-ha"
    )
    options = stored["spec"]["rayClusterConfig"]["gcsFaultToleranceOptions"]
    assert options["redisAddress"] == "redis:6379"
    # The real Deployment controller creates the Redis pod (there is no kubelet to run it).
    wait_for(
        lambda: cluster.plane.core.list_namespaced_pod(
            cluster.namespace, label_selector="app=redis"
        ).items,
        15,
        what="the Deployment and ReplicaSet controllers to create the Redis pod",
    )
