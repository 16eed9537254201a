"""What a RayService object says: its active cluster, its GCS fault tolerance, its Redis."""

from __future__ import annotations

from typing import Any

import pytest

from chaosraysvc.errors import TargetNotReadyError
from chaosraysvc.kube.rayservice import (
    GcsFtConfig,
    active_cluster_name,
    gcs_ft_config,
    redis_service_ref,
)


def _rayservice(
    options: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    head_env: list[dict[str, Any]] | None = None,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "headGroupSpec": {
            "template": {"spec": {"containers": [{"name": "ray-head", "env": head_env or []}]}}
        }
    }
    if options is not None:
        cluster["gcsFaultToleranceOptions"] = options
    return {
        "metadata": {"name": "rs", "namespace": "ns", "annotations": annotations or {}},
        "spec": {"rayClusterConfig": cluster},
        "status": status or {},
    }


def test_active_cluster_name_is_read_from_the_active_service_status() -> None:
    rs = _rayservice(status={"activeServiceStatus": {"rayClusterName": "rs-abcde"}})
    assert active_cluster_name(rs) == "rs-abcde"


def test_no_active_cluster_says_which_rayservice_and_what_to_do() -> None:
    rs = _rayservice(status={"pendingServiceStatus": {"rayClusterName": "rs-fghij"}})

    with pytest.raises(TargetNotReadyError) as err:
        active_cluster_name(rs)

    message = str(err.value)
    assert "RayService 'rs' in namespace 'ns' has no active RayCluster yet" in message
    assert "'rs-fghij' is still being prepared" in message
    assert "kubectl get rayservice" in message


@pytest.mark.parametrize(
    ("rayservice", "expected"),
    [
        (
            _rayservice(options={"redisAddress": "redis:6379"}),
            GcsFtConfig(
                True,
                "redis",
                "redis:6379",
                "spec.rayClusterConfig.gcsFaultToleranceOptions.redisAddress",
            ),
        ),
        (
            _rayservice(
                options={"externalStorageNamespace": "x"},
                head_env=[{"name": "RAY_REDIS_ADDRESS", "value": "redis:6379"}],
            ),
            GcsFtConfig(
                True,
                "redis",
                "redis:6379",
                "spec.rayClusterConfig.gcsFaultToleranceOptions + head env RAY_REDIS_ADDRESS",
            ),
        ),
        (
            _rayservice(options={"backend": "rocksdb", "storage": {"size": "1Gi"}}),
            GcsFtConfig(
                True,
                "embedded",
                "",
                "spec.rayClusterConfig.gcsFaultToleranceOptions.backend=rocksdb",
            ),
        ),
        (
            _rayservice(
                annotations={"ray.io/ft-enabled": "True"},
                head_env=[{"name": "RAY_REDIS_ADDRESS", "value": "redis.db.svc:6379"}],
            ),
            GcsFtConfig(
                True,
                "redis",
                "redis.db.svc:6379",
                "annotation ray.io/ft-enabled + head env RAY_REDIS_ADDRESS",
            ),
        ),
        (
            _rayservice(annotations={"ray.io/ft-enabled": "false"}),
            GcsFtConfig(False, "none", "", "no gcsFaultToleranceOptions nor ft-enabled annotation"),
        ),
        (
            _rayservice(),
            GcsFtConfig(False, "none", "", "no gcsFaultToleranceOptions nor ft-enabled annotation"),
        ),
    ],
    ids=["options", "options+env", "embedded", "annotation", "annotation-false", "none"],
)
def test_gcs_fault_tolerance_forms(rayservice: dict[str, Any], expected: GcsFtConfig) -> None:
    assert gcs_ft_config(rayservice) == expected


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("redis:6379", ("redis", "default")),
        ("redis", ("redis", "default")),
        ("redis://:secret@redis:6379", ("redis", "default")),
        ("rediss://redis-master:6380", ("redis-master", "default")),
        ("redis.db.svc:6379", ("redis", "db")),
        ("redis.db.svc.cluster.local:6379", ("redis", "db")),
        ("127.0.0.5:6379", None),
        ("[::1]:6379", None),
        ("redis.example.com:6379", None),
        ("", None),
    ],
)
def test_redis_address_to_service(address: str, expected: tuple[str, str] | None) -> None:
    assert redis_service_ref(address, "default") == expected
