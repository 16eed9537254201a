"""The lab kubelet writes a pod's status for that pod only, as the kubelet's status manager does.

A pod deleted at once (grace 0: the API object goes at once) and created again under the same
name (a StatefulSet's `redis-0`) is another pod; the old one's processes are still being
ended by the kubelet, whose status writes must not land on the new one. Seen on the lab's node
before the fix: the new `redis-0` kept the old one's "ContainerCreating" and IP for minutes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chaosraysvc_lab.podrun import PodRun

from .conftest import SeedCluster

pytestmark = pytest.mark.apiserver


class StandInNode:
    """What `PodRun` needs to write a status: the real API server's client."""

    def __init__(self, core: Any, state_dir: Path) -> None:
        self.core = core
        self.host_ip = "198.18.0.1"
        self.state_dir = state_dir


def _pod(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "redis-0", "namespace": namespace},
        "spec": {"containers": [{"name": "redis", "image": "redis:7.4.0"}]},
    }


def test_the_old_pods_status_never_lands_on_the_new_pod_of_its_name(
    seed_cluster: SeedCluster, tmp_path: Path
) -> None:
    cluster = seed_cluster([], wait_slices=False)
    core, namespace = cluster.plane.core, cluster.namespace
    old = core.create_namespaced_pod(namespace, _pod(namespace))
    core.delete_namespaced_pod("redis-0", namespace, grace_period_seconds=0)
    new = core.create_namespaced_pod(namespace, _pod(namespace))
    assert new.metadata.uid != old.metadata.uid

    node = StandInNode(core, tmp_path)
    stale = PodRun(node, core.api_client.sanitize_for_serialization(old))  # type: ignore[arg-type]
    stale.pod_ip, stale.phase = "198.18.10.12", "Running"
    stale._write_status()

    after = core.read_namespaced_pod_status("redis-0", namespace)
    assert after.status.pod_ip is None and after.status.phase == "Pending"
    assert stale.last_status == ""  # not written: tried again on the next pass, refused again

    # the run of the pod that is there writes its status
    current = PodRun(node, core.api_client.sanitize_for_serialization(new))  # type: ignore[arg-type]
    current.pod_ip, current.phase = "198.18.10.20", "Running"
    current._write_status()
    after = core.read_namespaced_pod_status("redis-0", namespace)
    assert (after.status.pod_ip, after.status.phase) == ("198.18.10.20", "Running")
