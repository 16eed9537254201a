"""Deleting pods: only the RayService's own, with grace periods and server-side dry runs.

The KubeRay stand-in replaces a deleted head, worker or Redis pod after 0.3 s by a new pod
(new name and uid), Ready 0.3 s later, and the EndpointSlices follow, so recovery can be
observed through `pods()` and `serve_endpoints()` as the lead's wait loop does.
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from chaosraysvc.errors import ConfigurationError, RefusedError
from chaosraysvc.model import Pod
from chaosraysvc.targets.base import pods_of_role, ready_endpoint_count

from . import seed
from .conftest import Cluster, StartCluster
from .helpers import wait_for


def _deletes(cluster: Cluster) -> list[tuple[str, dict[str, str]]]:
    return [(str(c.name), dict(c.params)) for c in cluster.double.calls if c.verb == "delete"]


def test_a_deleted_head_pod_is_replaced_and_serving_recovers(start_cluster: StartCluster) -> None:
    ha = start_cluster(replace_after=1.0)  # room to observe the outage on a busy machine
    target = ha.target()
    [head] = pods_of_role(target, "head")

    target.delete_pod(head)

    assert pods_of_role(target, "head") == [] or pods_of_role(target, "head")[0].uid != head.uid
    assert ready_endpoint_count(target) == 2
    new_heads = wait_for(
        "a new, ready head pod",
        lambda: pods_of_role(target, "head"),
        lambda heads: len(heads) == 1 and heads[0].ready,
    )
    new = new_heads[0]
    assert new.name != head.name and new.uid != head.uid
    assert new.name.startswith(f"{seed.CLUSTER}-head-")
    assert new.created_at > head.created_at and new.address.startswith("198.18.3.")
    wait_for("3 ready serve endpoints", lambda: ready_endpoint_count(target), lambda n: n == 3)
    assert {e.pod_name for e in target.serve_endpoints()} == {new.name, *seed.WORKERS}
    assert _deletes(ha) == [(seed.HEAD, {"gracePeriodSeconds": "0"})]


def test_a_worker_deleted_with_a_grace_period_terminates_first(ha: Cluster) -> None:
    target = ha.target()
    worker = next(p for p in target.pods() if p.name == seed.WORKERS[0])

    target.delete_pod(worker, grace_period=2)

    now = {p.name: p for p in target.pods()}
    assert (now[worker.name].phase, now[worker.name].ready) == ("Terminating", False)
    assert [e.ready for e in target.serve_endpoints() if e.pod_name == worker.name] == [False]
    workers = wait_for(
        "the worker replaced by a ready one",
        lambda: pods_of_role(target, "worker"),
        lambda ws: worker.name not in {w.name for w in ws}
        and len(ws) == 2
        and all(w.ready for w in ws),
    )
    [new] = [w for w in workers if w.name != seed.WORKERS[1]]  # the other worker is untouched
    assert new.name.startswith(f"{seed.CLUSTER}-worker-worker-") and new.uid != worker.uid
    assert _deletes(ha) == [(worker.name, {"gracePeriodSeconds": "2"})]


def test_a_dry_run_deletes_nothing(ha: Cluster) -> None:
    target = ha.target()
    before = target.pods()
    head = before[0]

    target.delete_pod(head, dry_run=True)
    time.sleep(0.8)  # longer than the stand-in takes to replace a deleted pod

    assert target.pods() == before
    assert ready_endpoint_count(target) == 3
    assert _deletes(ha) == [(seed.HEAD, {"gracePeriodSeconds": "0", "dryRun": "All"})]


@pytest.mark.parametrize("name", [seed.OTHER_HEAD, seed.OTHER_WORKER, seed.QUERY_POD])
def test_refuses_pods_outside_the_active_cluster_and_its_redis(ha: Cluster, name: str) -> None:
    stranger = Pod(name=name, role="head", phase="Running", ready=True, uid="", created_at=0.0)

    with pytest.raises(RefusedError, match=f"'{name}'.*'{seed.CLUSTER}'"):
        ha.target().delete_pod(stranger)

    assert _deletes(ha) == []
    assert name in ha.pod_names()


def test_refuses_a_pod_replaced_since_it_was_listed(ha: Cluster) -> None:
    target = ha.target()
    head = pods_of_role(target, "head")[0]
    stale = dataclasses.replace(head, uid="11111111-2222-4333-8444-555555555555")

    with pytest.raises(RefusedError, match="replaced"):
        target.delete_pod(stale)
    assert _deletes(ha) == []


def test_the_resolved_redis_pod_can_be_deleted_and_comes_back(ha: Cluster) -> None:
    target = ha.target()
    [redis] = pods_of_role(target, "redis")

    target.delete_pod(redis)

    replaced = wait_for(
        "a new ready Redis pod",
        lambda: pods_of_role(target, "redis"),
        lambda pods: len(pods) == 1 and pods[0].ready and pods[0].uid != redis.uid,
    )
    assert replaced[0].name.startswith("redis-6d9b7c5f8-")


def test_a_negative_grace_period_is_a_configuration_error(ha: Cluster) -> None:
    target = ha.target()
    with pytest.raises(ConfigurationError, match="grace_period"):
        target.delete_pod(target.pods()[0], grace_period=-1)
