"""Whether the Redis pod's (or the head's embedded store's) data outlives the pod."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from chaosraysvc.kube.redis import data_dir, embedded_storage_persistent, storage_persistent

SAMPLE_COMMAND = ["sh", "-c", "redis-server /usr/local/etc/redis/redis.conf"]
CONFIG_MOUNT = client.V1VolumeMount(
    name="config", mount_path="/usr/local/etc/redis/redis.conf", sub_path="redis.conf"
)
CONFIG_VOLUME = client.V1Volume(
    name="config", config_map=client.V1ConfigMapVolumeSource(name="redis-config")
)


def _pod(
    container: client.V1Container, volumes: list[client.V1Volume] | None = None
) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name="redis-x"),
        spec=client.V1PodSpec(containers=[container], volumes=[CONFIG_VOLUME, *(volumes or [])]),
    )


def _redis(
    image: str = "redis:7.4.0", mounts: list[client.V1VolumeMount] | None = None, **kw: Any
) -> client.V1Container:
    return client.V1Container(
        name="redis",
        image=image,
        command=kw.pop("command", SAMPLE_COMMAND),
        volume_mounts=[CONFIG_MOUNT, *(mounts or [])],
        **kw,
    )


def test_the_ha_samples_redis_keeps_nothing() -> None:
    assert storage_persistent(_pod(_redis())) is False


@pytest.mark.parametrize(
    ("volume", "persistent"),
    [
        (
            client.V1Volume(
                name="data",
                persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(claim_name="d"),
            ),
            True,
        ),
        (
            client.V1Volume(
                name="data", host_path=client.V1HostPathVolumeSource(path="/srv/redis")
            ),
            True,
        ),
        (client.V1Volume(name="data", nfs=client.V1NFSVolumeSource(server="nfs", path="/x")), True),
        (client.V1Volume(name="data", empty_dir=client.V1EmptyDirVolumeSource()), False),
    ],
    ids=["pvc", "hostPath", "nfs", "emptyDir"],
)
def test_a_volume_at_the_data_dir_decides(volume: client.V1Volume, persistent: bool) -> None:
    mount = client.V1VolumeMount(name="data", mount_path="/data")
    assert storage_persistent(_pod(_redis(mounts=[mount]), [volume])) is persistent


def test_a_volume_elsewhere_does_not_count() -> None:
    mount = client.V1VolumeMount(name="data", mount_path="/var/lib/redis")
    pvc = client.V1Volume(
        name="data",
        persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(claim_name="d"),
    )
    assert storage_persistent(_pod(_redis(mounts=[mount]), [pvc])) is False


def test_a_dir_flag_moves_the_data_dir() -> None:
    command = ["redis-server", "--dir", "/var/lib/redis", "--appendonly", "yes"]
    mount = client.V1VolumeMount(name="data", mount_path="/var/lib")
    pvc = client.V1Volume(
        name="data",
        persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(claim_name="d"),
    )
    container = _redis(command=command, mounts=[mount])

    assert data_dir(container) == "/var/lib/redis"
    assert storage_persistent(_pod(container, [pvc])) is True


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("redis:7.4.0", "/data"),
        ("docker.io/library/redis@sha256:abc", "/data"),
        ("registry.local:5000/redis", "/data"),
        ("bitnami/redis:7.2", "/bitnami/redis/data"),
        ("example.com/keydb:6", None),
    ],
)
def test_the_default_data_dir_comes_from_the_image(image: str, expected: str | None) -> None:
    assert data_dir(_redis(image=image, command=["keydb-server"])) == expected


def test_an_unknown_server_is_unknown() -> None:
    container = client.V1Container(name="kv", image="example.com/keydb:6")
    assert storage_persistent(_pod(container)) is None


def test_the_embedded_store_persists_on_the_heads_pvc() -> None:
    head = client.V1Pod(
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="ray-head",
                    image="rayproject/ray:2.52.0",
                    volume_mounts=[
                        client.V1VolumeMount(name="gcs-storage", mount_path="/data/gcs")
                    ],
                )
            ],
            volumes=[
                client.V1Volume(
                    name="gcs-storage",
                    persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(
                        claim_name="c-gcs-pvc"
                    ),
                )
            ],
        )
    )
    assert embedded_storage_persistent(head) is True
    head.spec.volumes = []
    assert embedded_storage_persistent(head) is False
