"""KubeRay pods as `Pod` values."""

from __future__ import annotations

from datetime import UTC, datetime

from kubernetes import client

from chaosraysvc.kube.pods import cluster_selector, label_selector, role_of, to_pod

CREATED = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)


def _pod(**meta: object) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(
            name="c-head-abcde",
            uid="u-1",
            creation_timestamp=CREATED,
            labels={"ray.io/cluster": "c", "ray.io/node-type": "head"},
            **meta,
        ),
        status=client.V1PodStatus(
            phase="Running",
            pod_ip="127.0.1.10",
            conditions=[
                client.V1PodCondition(type="PodScheduled", status="True"),
                client.V1PodCondition(type="Ready", status="True"),
            ],
            container_statuses=[
                client.V1ContainerStatus(
                    name=n, image="i", image_id="", ready=True, restart_count=r
                )
                for n, r in (("ray-head", 2), ("sidecar", 1))
            ],
        ),
    )


def test_a_running_pod() -> None:
    pod = to_pod(_pod(), "head")

    assert (pod.name, pod.role, pod.phase, pod.ready, pod.uid) == (
        "c-head-abcde",
        "head",
        "Running",
        True,
        "u-1",
    )
    assert pod.created_at == CREATED.timestamp()
    assert pod.restarts == 3
    assert pod.address == "127.0.1.10"
    assert pod.labels["ray.io/node-type"] == "head"


def test_a_pod_being_deleted_is_terminating_and_not_ready() -> None:
    pod = to_pod(_pod(deletion_timestamp=CREATED), "head")
    assert (pod.phase, pod.ready) == ("Terminating", False)


def test_a_pod_without_status_is_pending_and_not_ready() -> None:
    pod = to_pod(client.V1Pod(metadata=client.V1ObjectMeta(name="p")), "worker")
    assert (pod.phase, pod.ready, pod.restarts, pod.address, pod.created_at) == (
        "Pending",
        False,
        0,
        "",
        0.0,
    )


def test_roles_come_from_the_node_type_label() -> None:
    assert role_of(_pod()) == "head"
    worker = _pod()
    worker.metadata.labels["ray.io/node-type"] = "worker"
    assert role_of(worker) == "worker"
    assert role_of(client.V1Pod(metadata=client.V1ObjectMeta(name="x"))) is None


def test_selectors() -> None:
    assert label_selector({"b": "2", "a": "1"}) == "a=1,b=2"
    assert (
        cluster_selector("rs-abcde") == "ray.io/cluster=rs-abcde,ray.io/node-type in (head,worker)"
    )
