"""GCS fault tolerance in its three forms, the Redis pod behind it, and whether Redis persists."""

from __future__ import annotations

import pytest

from chaosraysvc.errors import NotFoundError
from chaosraysvc.model import GcsFaultTolerance

from . import seed
from .conftest import StartCluster


def test_gcs_ft_from_gcs_fault_tolerance_options(start_cluster: StartCluster) -> None:
    target = start_cluster(seed.ha_sample("options")).target()

    assert target.gcs_fault_tolerance() == GcsFaultTolerance(
        enabled=True,
        backend="redis",
        redis_address="redis:6379",
        persistent=False,
        source="spec.rayClusterConfig.gcsFaultToleranceOptions.redisAddress",
    )


def test_gcs_ft_from_the_older_annotation_and_head_env(start_cluster: StartCluster) -> None:
    target = start_cluster(seed.ha_sample("annotation")).target()

    assert target.gcs_fault_tolerance() == GcsFaultTolerance(
        enabled=True,
        backend="redis",
        redis_address="redis:6379",
        persistent=False,
        source="annotation ray.io/ft-enabled + head env RAY_REDIS_ADDRESS",
    )
    assert [p.name for p in target.pods() if p.role == "redis"] == [seed.REDIS]


def test_embedded_gcs_store_has_no_redis_pod(start_cluster: StartCluster) -> None:
    target = start_cluster(seed.ha_sample("embedded")).target()

    ft = target.gcs_fault_tolerance()

    assert (ft.enabled, ft.backend, ft.redis_address) == (True, "embedded", "")
    assert ft.persistent is True  # KubeRay mounts a PVC at /data/gcs on the head
    assert "backend=rocksdb" in ft.source
    assert {p.role for p in target.pods()} == {"head", "worker"}


def test_no_gcs_fault_tolerance(start_cluster: StartCluster) -> None:
    target = start_cluster(seed.ha_sample("none")).target()

    ft = target.gcs_fault_tolerance()

    assert (ft.enabled, ft.backend, ft.persistent) == (False, "none", None)
    assert {p.role for p in target.pods()} == {"head", "worker"}


@pytest.mark.parametrize(
    ("volume", "persistent"),
    [("none", False), ("emptyDir", False), ("pvc", True), ("hostPath", True)],
)
def test_redis_persistence_follows_the_volume_at_its_data_dir(
    start_cluster: StartCluster, volume: seed.RedisVolume, persistent: bool
) -> None:
    target = start_cluster(seed.ha_sample("options", redis_volume=volume)).target()

    ft = target.gcs_fault_tolerance()
    assert (ft.backend, ft.persistent) == ("redis", persistent)


def test_an_explicit_redis_label_selector_finds_the_redis_pod(
    start_cluster: StartCluster,
) -> None:
    cluster = start_cluster()
    target = cluster.target(redis_label_selector="app=redis,pod-template-hash=6d9b7c5f8")

    assert [p.name for p in target.pods() if p.role == "redis"] == [seed.REDIS]
    assert not [c for c in cluster.double.calls if c.resource == "services"]


def test_a_missing_redis_service_is_reported_with_what_to_do(start_cluster: StartCluster) -> None:
    objects = [o for o in seed.ha_sample() if o["metadata"]["name"] != "redis"]
    target = start_cluster(objects).target()

    with pytest.raises(
        NotFoundError, match="Service 'redis' not found in namespace 'default'"
    ) as err:
        target.pods()
    assert "redis_label_selector" in str(err.value)
    assert "redis:6379" in str(err.value)
