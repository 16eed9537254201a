"""GCS fault tolerance in its three forms, the Redis pod behind it, and whether Redis persists.

Each variant is loaded into the real API server, so every form passes KubeRay's CRD schema.
"""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from chaosraysvc.errors import NotFoundError
from chaosraysvc.model import GcsFaultTolerance

from .. import seed
from .conftest import SeedCluster
from .loader import Loader, in_namespace

pytestmark = pytest.mark.apiserver


def test_gcs_ft_from_gcs_fault_tolerance_options(seed_cluster: SeedCluster) -> None:
    target = seed_cluster(seed.ha_sample("options"), wait_slices=False).target()

    assert target.gcs_fault_tolerance() == GcsFaultTolerance(
        enabled=True,
        backend="redis",
        redis_address="redis:6379",
        persistent=False,
        source="spec.rayClusterConfig.gcsFaultToleranceOptions.redisAddress",
    )


def test_gcs_ft_from_the_older_annotation_and_head_env(seed_cluster: SeedCluster) -> None:
    target = seed_cluster(seed.ha_sample("annotation"), wait_slices=False).target()

    assert target.gcs_fault_tolerance() == GcsFaultTolerance(
        enabled=True,
        backend="redis",
        redis_address="redis:6379",
        persistent=False,
        source="annotation ray.io/ft-enabled + head env RAY_REDIS_ADDRESS",
    )
    assert [p.name for p in target.pods() if p.role == "redis"] == [seed.REDIS]


def test_kuberays_crd_refuses_the_embedded_gcs_store_form(seed_cluster: SeedCluster) -> None:
    """The `backend: rocksdb` form the target reads is not in KubeRay v1.5.0's CRD.

    The API double accepted it; the real server answers 422 (redisAddress is required, and
    `backend` and `storage` are unknown fields). The target's reading of that form stays
    covered by the unit tests; when a pinned KubeRay accepts it, this test fails and the
    form gets an integration test here again.
    """
    cluster = seed_cluster([], wait_slices=False)
    [body] = in_namespace([seed.rayservice("embedded")], cluster.namespace)

    with pytest.raises(ApiException) as err:
        Loader(cluster.plane.api, cluster.namespace).create(body)

    assert err.value.status == 422
    assert "spec.rayClusterConfig.gcsFaultToleranceOptions.redisAddress" in str(err.value.body)


def test_no_gcs_fault_tolerance(seed_cluster: SeedCluster) -> None:
    target = seed_cluster(seed.ha_sample("none"), wait_slices=False).target()

    ft = target.gcs_fault_tolerance()

    assert (ft.enabled, ft.backend, ft.persistent) == (False, "none", None)
    assert {p.role for p in target.pods()} == {"head", "worker"}


@pytest.mark.parametrize(
    ("volume", "persistent"),
    [("none", False), ("emptyDir", False), ("pvc", True), ("hostPath", True)],
)
def test_redis_persistence_follows_the_volume_at_its_data_dir(
    seed_cluster: SeedCluster, volume: seed.RedisVolume, persistent: bool
) -> None:
    target = seed_cluster(
        seed.ha_sample("options", redis_volume=volume), wait_slices=False
    ).target()

    ft = target.gcs_fault_tolerance()
    assert (ft.backend, ft.persistent) == ("redis", persistent)


def test_an_explicit_redis_label_selector_finds_the_redis_pod(
    seed_cluster: SeedCluster,
) -> None:
    objects = [o for o in seed.ha_sample() if o["metadata"]["name"] != "redis"]
    cluster = seed_cluster(objects, wait_slices=False)  # no Service to resolve redisAddress by
    target = cluster.target(redis_label_selector="app=redis,pod-template-hash=6d9b7c5f8")

    assert [p.name for p in target.pods() if p.role == "redis"] == [seed.REDIS]


def test_a_missing_redis_service_is_reported_with_what_to_do(seed_cluster: SeedCluster) -> None:
    objects = [o for o in seed.ha_sample() if o["metadata"]["name"] != "redis"]
    cluster = seed_cluster(objects, wait_slices=False)

    with pytest.raises(
        NotFoundError, match=f"Service 'redis' not found in namespace '{cluster.namespace}'"
    ) as err:
        cluster.target().pods()
    assert "redis_label_selector" in str(err.value)
    assert "redis:6379" in str(err.value)
