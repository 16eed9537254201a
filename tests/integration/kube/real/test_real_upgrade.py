"""Upgrading a RayService through the real API server (no operator: the patch and the reads).

The roll-out itself, by the real KubeRay operator, is run end to end on the one-machine node
(test_real_node.py); here the API server's side: a merge patch validated against the real
RayService CRD, a server-side dry run that stores nothing, the active and pending clusters
read from the RayService's status, and the action refusing while an upgrade is under way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosraysvc.activities import rayservice_actions
from chaosraysvc.errors import KubernetesApiError

from .. import seed
from .conftest import RealCluster, SeedCluster

pytestmark = pytest.mark.apiserver

ANNOTATION = rayservice_actions.RESTARTED_AT


def _head_annotations(cluster: RealCluster) -> dict[str, Any]:
    service = cluster.target().rayservice()
    template = service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]
    return dict((template.get("metadata") or {}).get("annotations") or {})


def _configuration(cluster: RealCluster) -> dict[str, Any]:
    return {
        "raysvc_target": "kubernetes",
        "rayservice_name": seed.RAYSERVICE,
        "rayservice_namespace": cluster.namespace,
        "dashboard_url": "http://127.0.0.1:9",  # no Ray behind the seed
    }


def test_a_restart_patch_is_stored_and_a_dry_run_is_not(seed_cluster: SeedCluster) -> None:
    cluster = seed_cluster(wait_slices=False)
    target = cluster.target()
    patch = rayservice_actions.restart_patch(datetime(2026, 12, 4, 12, 0, tzinfo=UTC))
    generation = target.rayservice()["metadata"]["generation"]

    target.upgrade(patch, dry_run=True)
    assert ANNOTATION not in _head_annotations(cluster)

    target.upgrade(patch)
    assert _head_annotations(cluster)[ANNOTATION] == "2026-12-04T12:00:00Z"
    stored = target.rayservice()
    assert stored["metadata"]["generation"] == generation + 1  # a spec change, for KubeRay
    # The merge patch kept the rest of the spec (worker groups, GCS FT) as it was.
    assert stored["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    assert stored["spec"]["rayClusterConfig"]["gcsFaultToleranceOptions"]


def test_the_real_crd_refuses_an_invalid_patch_with_the_field_named(
    seed_cluster: SeedCluster,
) -> None:
    cluster = seed_cluster(wait_slices=False)
    bad = {"rayClusterConfig": {"headGroupSpec": {"rayStartParams": "not-a-map"}}}

    with pytest.raises(KubernetesApiError) as err:
        cluster.target().upgrade(bad)

    message = str(err.value)
    assert "patch rayservices" in message and cluster.namespace in message
    assert "rayStartParams" in message
    assert ANNOTATION not in _head_annotations(cluster)


def test_active_and_pending_clusters_are_read_from_the_status(seed_cluster: SeedCluster) -> None:
    cluster = seed_cluster(wait_slices=False)
    target = cluster.target()
    assert target.ray_clusters() == (seed.CLUSTER, "")

    cluster.loader.write_status(
        "RayService",
        seed.RAYSERVICE,
        {"pendingServiceStatus": {"rayClusterName": seed.OTHER_CLUSTER}},
    )

    assert target.ray_clusters() == (seed.CLUSTER, seed.OTHER_CLUSTER)
    assert {p.name for p in target.cluster_pods(seed.OTHER_CLUSTER)} == {
        seed.OTHER_HEAD,
        seed.OTHER_WORKER,
    }
    with pytest.raises(ActivityFailed, match=f"already rolling out cluster '{seed.OTHER_CLUSTER}'"):
        rayservice_actions.upgrade_rayservice(configuration=_configuration(cluster))
    assert ANNOTATION not in _head_annotations(cluster)  # refused before any patch


def test_the_action_dry_run_validates_on_the_server_and_changes_nothing(
    seed_cluster: SeedCluster,
) -> None:
    cluster = seed_cluster(wait_slices=False)

    result = rayservice_actions.upgrade_rayservice(
        dry_run=True, configuration=_configuration(cluster)
    )

    assert result["dry_run"] is True and result["recovery"] is None
    assert result["upgraded"]["from_cluster"] == seed.CLUSTER
    assert ANNOTATION in str(result["upgraded"]["patch"])
    assert ANNOTATION not in _head_annotations(cluster)
    with pytest.raises(ActivityFailed, match="rayStartParams"):
        rayservice_actions.upgrade_rayservice(
            patch={"rayClusterConfig": {"headGroupSpec": {"rayStartParams": 3}}},
            dry_run=True,
            configuration=_configuration(cluster),
        )
